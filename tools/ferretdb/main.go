// Command ferretdb runs FerretDB v1 (SQLite handler) for jobgate's tests.
//
// `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds a binary that panics at
// start: the module's zip lacks build/version/version.txt, which that command requires when it
// is the main module. FerretDB's embeddable package has no such check, so this wrapper builds the
// same server from the same release and takes the flags of the upstream command that the tests
// use.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	handler := flag.String("handler", "sqlite", "backend handler (sqlite)")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite URI (a directory)")
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	// Accepted for command-line compatibility with upstream's ferretdb; the embeddable
	// package never sends telemetry, has no debug handler and keeps no state directory.
	_ = flag.String("telemetry", "disable", "ignored: telemetry is always off")
	_ = flag.String("debug-addr", "-", "ignored: no debug handler")
	_ = flag.String("state-dir", ".", "ignored: no state is kept")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		log.Fatalf("bad --log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	server, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listenAddr},
		Logger:    logger,
		Handler:   *handler,
		SQLiteURL: *sqliteURL,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	logger.Info("ferretdb listening", "addr", *listenAddr, "uri", server.MongoDBURI())
	if err := server.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
