// GraphiQL for jobgate. Queries and mutations go over HTTP POST, subscriptions over a
// graphql-transport-ws WebSocket. The headers typed into GraphiQL's Headers tab travel with
// both: as HTTP headers, and as the `connection_init` payload, where the gateway reads the
// token (browsers cannot set headers on a WebSocket).
(function () {
  "use strict";

  const httpUrl = window.location.origin + window.location.pathname;
  const wsUrl = httpUrl.replace(/^http/, "ws");
  const clients = new Map(); // one WebSocket client per distinct set of headers

  function wsClient(headers) {
    const key = JSON.stringify(headers || {});
    if (!clients.has(key)) {
      clients.set(
        key,
        graphqlWs.createClient({ url: wsUrl, connectionParams: headers || {}, lazy: true })
      );
    }
    return clients.get(key);
  }

  function operationKind(query, operationName) {
    const source = (query || "").replace(/#[^\n]*/g, "");
    const pattern = /\b(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?/g;
    let kind = null;
    let match;
    while ((match = pattern.exec(source)) !== null) {
      if (!operationName || match[2] === operationName) {
        kind = match[1];
        if (operationName) break;
      }
    }
    return kind || "query";
  }

  function subscribe(params, headers) {
    // An async iterator over the events, as GraphiQL expects from a subscription.
    const queue = [];
    let wake = null;
    let finished = false;
    const dispose = wsClient(headers).subscribe(params, {
      next: (value) => { queue.push({ value }); if (wake) wake(); },
      error: (error) => {
        const errors = Array.isArray(error) ? error : [{ message: String(error.reason || error.message || error) }];
        queue.push({ value: { errors } });
        finished = true;
        if (wake) wake();
      },
      complete: () => { finished = true; if (wake) wake(); },
    });
    return {
      [Symbol.asyncIterator]() { return this; },
      async next() {
        while (queue.length === 0 && !finished) {
          await new Promise((resolve) => { wake = resolve; });
          wake = null;
        }
        if (queue.length > 0) return { value: queue.shift().value, done: false };
        return { value: undefined, done: true };
      },
      async return() { dispose(); finished = true; return { value: undefined, done: true }; },
    };
  }

  async function fetcher(params, options) {
    const headers = (options && options.headers) || {};
    if (operationKind(params.query, params.operationName) === "subscription") {
      return subscribe(params, headers);
    }
    const response = await fetch(httpUrl, {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json", Accept: "application/json" }, headers),
      body: JSON.stringify(params),
    });
    return response.json();
  }

  // A starting document may come in the fragment (#query=...&headers=...): a `query` in the URL's
  // search part would be run by the server as a GET request instead of opening GraphiQL.
  const search = new URLSearchParams(window.location.hash.slice(1));
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultEditorToolsVisibility: true,
      query: search.get("query") || undefined,
      headers: search.get("headers") || undefined,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    })
  );
})();
