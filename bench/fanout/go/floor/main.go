// Command floor is the fan-out benchmark's Go floor: a bare broadcaster that speaks just
// enough graphql-transport-ws to take subscriptions (connection_ack, then nothing) and, on
// GET /publish, writes one precomputed message to every subscriber, one after another. What
// it costs is what any server pays for one process's sockets; nothing here is GraphQL.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"sync"

	"github.com/gorilla/websocket"
)

type subscriber struct {
	conn    *websocket.Conn
	writeMu sync.Mutex
}

func main() {
	address := flag.String("listen", "127.0.0.1:0", "host:port")
	messageFile := flag.String("message", "", "the file holding the message to broadcast")
	flag.Parse()
	text, err := os.ReadFile(*messageFile)
	if err != nil {
		log.Fatal(err)
	}
	message, err := websocket.NewPreparedMessage(websocket.TextMessage, text)
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	subscribers := map[*subscriber]struct{}{}
	upgrader := websocket.Upgrader{
		Subprotocols:    []string{"graphql-transport-ws"},
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	http.HandleFunc("/graphql", func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s := &subscriber{conn: conn}
		defer func() {
			mu.Lock()
			delete(subscribers, s)
			mu.Unlock()
			conn.Close()
		}()
		for {
			var m struct{ Type string }
			if err := conn.ReadJSON(&m); err != nil {
				return
			}
			switch m.Type {
			case "connection_init":
				s.writeMu.Lock()
				conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"connection_ack"}`))
				s.writeMu.Unlock()
			case "subscribe":
				mu.Lock()
				subscribers[s] = struct{}{}
				mu.Unlock()
			}
		}
	})
	http.HandleFunc("/publish", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		all := make([]*subscriber, 0, len(subscribers))
		for s := range subscribers {
			all = append(all, s)
		}
		mu.Unlock()
		for _, s := range all {
			s.writeMu.Lock()
			s.conn.WritePreparedMessage(message)
			s.writeMu.Unlock()
		}
		json.NewEncoder(w).Encode(map[string]int{"sent": len(all)})
	})
	log.Fatal(http.ListenAndServe(*address, nil))
}
