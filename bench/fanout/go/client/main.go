// Command client holds N graphql-transport-ws subscriptions to one server and measures how
// long one broadcast takes to reach each of them. It is the fan-out benchmark's client
// (bench/bench_fanout.py drives it over stdin): written in Go so that reading 10,000 sockets
// is not the bottleneck of what it measures.
//
// Commands, one per line on stdin; each answers one line on stdout:
//
//	connect N   open N more subscriptions; "connected TOTAL" once each is acknowledged
//	round K     send the trigger (K replaces {n} in its body) and wait until every
//	            subscription has its next message: a JSON line of latencies in ms
//	sample      the last next message the first subscription received
//	quit        close every connection and exit
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

type subscriber struct {
	conn    *websocket.Conn
	writeMu sync.Mutex
}

type client struct {
	url, token, query string
	triggerURL        string
	triggerMethod     string
	triggerAuth       string
	triggerBody       string

	subscribers []*subscriber
	// The round in progress: when it began, and each subscriber's latency (ns) once it is in.
	started   atomic.Int64
	latencies []atomic.Int64
	remaining atomic.Int64
	done      chan struct{}
	armed     atomic.Bool

	sampleMu sync.Mutex
	sample   []byte
}

func main() {
	c := &client{}
	flag.StringVar(&c.url, "url", "", "the server's WebSocket URL")
	flag.StringVar(&c.token, "token", "", "sent as connection_init's Authorization ({i}: the subscriber's index)")
	flag.StringVar(&c.query, "query", "", "the subscription document")
	flag.StringVar(&c.triggerURL, "trigger-url", "", "the request that makes the server broadcast")
	flag.StringVar(&c.triggerMethod, "trigger-method", "POST", "its method")
	flag.StringVar(&c.triggerAuth, "trigger-auth", "", "its Authorization header, if any")
	flag.StringVar(&c.triggerBody, "trigger-body", "", "its JSON body ({n}: the round)")
	flag.Parse()

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		if len(fields) == 0 {
			continue
		}
		var err error
		switch fields[0] {
		case "connect":
			n, _ := strconv.Atoi(fields[1])
			err = c.connect(n)
			if err == nil {
				fmt.Printf("connected %d\n", len(c.subscribers))
			}
		case "round":
			var out []byte
			out, err = c.round(fields[1])
			if err == nil {
				fmt.Println(string(out))
			}
		case "sample":
			c.sampleMu.Lock()
			fmt.Println(string(c.sample))
			c.sampleMu.Unlock()
		case "quit":
			for _, s := range c.subscribers {
				s.conn.Close()
			}
			return
		default:
			err = fmt.Errorf("unknown command %q", fields[0])
		}
		if err != nil {
			fmt.Printf("error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}
}

// connect opens n subscriptions, 200 at a time.
func (c *client) connect(n int) error {
	first := len(c.subscribers)
	opened := make([]*subscriber, n)
	errs := make(chan error, n)
	gate := make(chan struct{}, 200)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		gate <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-gate }()
			s, err := c.open(first + i)
			if err != nil {
				errs <- err
				return
			}
			opened[i] = s
		}(i)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	c.subscribers = append(c.subscribers, opened...)
	latencies := make([]atomic.Int64, len(c.subscribers))
	c.latencies = latencies
	for i := first; i < len(c.subscribers); i++ {
		go c.read(i)
	}
	return nil
}

// open makes subscriber `index`: its token is -token with {i} replaced by the index.
func (c *client) open(index int) (*subscriber, error) {
	dialer := websocket.Dialer{
		Subprotocols:     []string{"graphql-transport-ws"},
		HandshakeTimeout: 60 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
	}
	conn, _, err := dialer.Dial(c.url, nil)
	if err != nil {
		return nil, err
	}
	init := map[string]any{"type": "connection_init", "payload": map[string]string{"Authorization": "Bearer " + strings.ReplaceAll(c.token, "{i}", strconv.Itoa(index))}}
	if err := conn.WriteJSON(init); err != nil {
		return nil, err
	}
	var ack struct{ Type string }
	if err := conn.ReadJSON(&ack); err != nil {
		return nil, err
	}
	if ack.Type != "connection_ack" {
		return nil, fmt.Errorf("expected connection_ack, got %q", ack.Type)
	}
	subscribe := map[string]any{"id": "1", "type": "subscribe", "payload": map[string]string{"query": c.query}}
	if err := conn.WriteJSON(subscribe); err != nil {
		return nil, err
	}
	return &subscriber{conn: conn}, nil
}

var nextType = []byte(`"type":"next"`)

// read takes subscriber i's messages: a next message completes its part of the round.
func (c *client) read(i int) {
	s := c.subscribers[i]
	for {
		_, message, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		if bytes.Contains(message, nextType) {
			if c.armed.Load() && c.latencies[i].Load() == 0 {
				c.latencies[i].Store(time.Now().UnixNano() - c.started.Load())
				if c.remaining.Add(-1) == 0 {
					close(c.done)
				}
			}
			if i == 0 {
				c.sampleMu.Lock()
				c.sample = message
				c.sampleMu.Unlock()
			}
			continue
		}
		var m struct{ Type string }
		if json.Unmarshal(message, &m) == nil && m.Type == "ping" {
			s.writeMu.Lock()
			s.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`))
			s.writeMu.Unlock()
		} else if m.Type == "error" || m.Type == "complete" {
			fmt.Fprintf(os.Stderr, "subscriber %d: %s\n", i, message)
		}
	}
}

func (c *client) round(n string) ([]byte, error) {
	for i := range c.latencies {
		c.latencies[i].Store(0)
	}
	c.remaining.Store(int64(len(c.subscribers)))
	c.done = make(chan struct{})
	body := strings.ReplaceAll(c.triggerBody, "{n}", n)
	request, err := http.NewRequest(c.triggerMethod, c.triggerURL, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	request.Header.Set("Content-Type", "application/json")
	if c.triggerAuth != "" {
		request.Header.Set("Authorization", c.triggerAuth)
	}
	c.started.Store(time.Now().UnixNano())
	c.armed.Store(true)
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		return nil, err
	}
	reply, _ := io.ReadAll(response.Body)
	response.Body.Close()
	if response.StatusCode != 200 || bytes.Contains(reply, []byte(`"errors"`)) {
		return nil, fmt.Errorf("trigger answered %d: %s", response.StatusCode, reply)
	}
	select {
	case <-c.done:
	case <-time.After(120 * time.Second):
		return nil, fmt.Errorf("%d subscribers had nothing after 120 s", c.remaining.Load())
	}
	c.armed.Store(false)
	ms := make([]float64, len(c.latencies))
	for i := range c.latencies {
		ms[i] = float64(c.latencies[i].Load()) / 1e6
	}
	sort.Float64s(ms)
	at := func(q float64) float64 { return ms[min(len(ms)-1, int(q*float64(len(ms))))] }
	return json.Marshal(map[string]float64{
		"first": ms[0], "p50": at(0.5), "p99": at(0.99), "last": ms[len(ms)-1],
	})
}
