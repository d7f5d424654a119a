// GraphiQL for jobgate. Queries and mutations go over HTTP POST, subscriptions over a
// graphql-transport-ws WebSocket, chosen from the parsed document.
//
// - Headers are shared by every tab: the last non-empty headers typed in any tab are
//   remembered (in this browser's localStorage) and used by tabs whose Headers are empty, and
//   new tabs start with them. They travel as HTTP headers and as the WebSocket's
//   `connection_init` payload, where the gateway reads the token (browsers cannot set headers
//   on a WebSocket).
// - Signed in through the site's identity provider (jobgate-signin.js), the access token goes
//   with every request and new subscription. A subscription outlives no token: at its expiry
//   the gateway closes it (4403), and running it again uses the refreshed token.
// - A subscription's result pane lists its events as they arrive, oldest first.
// - A subscription keeps running when you switch to another tab (GraphiQL would stop it):
//   its events are collected meanwhile, and coming back to its tab shows them all and goes on
//   live. The Stop button stops it.
(function () {
  "use strict";

  const httpUrl = window.location.origin + window.location.pathname;
  const wsUrl = httpUrl.replace(/^http/, "ws");
  const HEADERS_KEY = "jobgate:headers";
  const clients = new Map(); // one WebSocket client per distinct set of headers
  const live = new Map(); // running subscriptions, by document, variables and headers
  let switchingTabs = false;

  function storedHeaders() {
    try {
      return JSON.parse(window.localStorage.getItem(HEADERS_KEY) || "{}");
    } catch (_error) {
      return {};
    }
  }

  function sharedHeaders(headers) {
    if (headers && Object.keys(headers).length > 0) {
      const text = JSON.stringify(headers);
      if (text !== window.localStorage.getItem(HEADERS_KEY)) {
        window.localStorage.setItem(HEADERS_KEY, text);
        render(); // new tabs start with these headers
      }
      return headers;
    }
    return storedHeaders();
  }

  function wsClient(headers) {
    const key = JSON.stringify(headers);
    if (!clients.has(key)) {
      clients.set(key, graphqlWs.createClient({ url: wsUrl, connectionParams: headers, lazy: true }));
    }
    return clients.get(key);
  }

  // The operation to run, from the document parsed with graphql-js (the copy inside GraphiQL's
  // bundle): the named one, or the document's only one (GraphiQL can hand over the name of
  // another tab's operation just after a tab switch). A document that does not parse goes over
  // HTTP, and the gateway says what is wrong.
  function chooseOperation(query, operationName) {
    const graphql = GraphiQL.GraphQL;
    let document;
    try {
      document = graphql.parse(query);
    } catch (_error) {
      return null;
    }
    return (
      (operationName && graphql.getOperationAST(document, operationName))
      || graphql.getOperationAST(document, null)
    );
  }

  function notify(subscription) {
    for (const wake of subscription.waiting) wake();
    subscription.waiting.clear();
  }

  function startSubscription(key, params, headers) {
    const subscription = { key, query: params.query, events: [], waiting: new Set(), done: false };
    subscription.dispose = wsClient(headers).subscribe(params, {
      next: (value) => { subscription.events.push(value); notify(subscription); },
      error: (error) => {
        const errors = Array.isArray(error)
          ? error
          : [{ message: String(error.reason || error.message || error) }];
        subscription.events.push({ errors });
        subscription.done = true;
        notify(subscription);
      },
      complete: () => { subscription.done = true; notify(subscription); },
    });
    live.set(key, subscription);
    return subscription;
  }

  function stopSubscription(subscription) {
    subscription.dispose();
    subscription.done = true;
    live.delete(subscription.key);
    notify(subscription);
  }

  // What GraphiQL reads: `{events: [...]}`, every event so far, again whenever one arrives.
  function eventList(subscription) {
    let shown = -1;
    let closed = false;
    return {
      [Symbol.asyncIterator]() { return this; },
      async next() {
        while (!closed && shown === subscription.events.length && !subscription.done) {
          await new Promise((resolve) => subscription.waiting.add(resolve));
        }
        if (closed || (shown === subscription.events.length && subscription.done)) {
          if (subscription.done) live.delete(subscription.key);
          return { value: undefined, done: true };
        }
        shown = subscription.events.length;
        // An object, not a bare list: GraphiQL merges lists as incremental payloads.
        return { value: { events: subscription.events.slice() }, done: false };
      },
      async return() {
        closed = true;
        // GraphiQL stops whatever runs when a tab is clicked: then keep it running.
        if (!switchingTabs) stopSubscription(subscription);
        return { value: undefined, done: true };
      },
    };
  }

  async function fetcher(graphiqlParams, options) {
    // Signed in (jobgate-signin.js): the access token goes along, unless the Headers editor
    // names an Authorization of its own. It is never kept with the shared headers.
    await window.jobgateSignIn.ready;
    const headers = Object.assign(
      {},
      window.jobgateSignIn.headers(),
      sharedHeaders((options && options.headers) || {})
    );
    const query = graphiqlParams.query || "";
    const operation = chooseOperation(query, graphiqlParams.operationName);
    const operationName = operation
      ? (operation.name ? operation.name.value : null)
      : graphiqlParams.operationName || null;
    const params = Object.assign({}, graphiqlParams, { operationName });
    if (operation && operation.operation === "subscription") {
      const key = JSON.stringify([params.query, params.variables || null, params.operationName || null, headers]);
      const running = live.get(key);
      return eventList(running && !running.done ? running : startSubscription(key, params, headers));
    }
    const response = await fetch(httpUrl, {
      method: "POST",
      headers: Object.assign(
        { "Content-Type": "application/json", Accept: "application/graphql-response+json, application/json" },
        headers
      ),
      body: JSON.stringify(params),
    });
    return response.json();
  }

  // A click on a tab: GraphiQL stops the running operation right after this listener runs.
  document.addEventListener(
    "click",
    (event) => {
      if (event.target instanceof Element && event.target.closest(".graphiql-tab")) {
        switchingTabs = true;
        window.setTimeout(() => { switchingTabs = false; }, 0);
      }
    },
    true
  );

  // Back on a tab whose subscription kept running: show it again (its events, then live).
  // GraphiQL calls this on every change of its tabs' state; only a change of tab counts.
  let activeTabId = null;
  function onTabChange(tabState) {
    const tab = tabState.tabs[tabState.activeTabIndex];
    if (!tab || tab.id === activeTabId) return;
    const first = activeTabId === null;
    activeTabId = tab.id;
    if (first) return;
    const running = Array.from(live.values()).find((s) => s.query === tab.query && !s.done);
    if (running) {
      window.setTimeout(() => {
        const button = document.querySelector(".graphiql-execute-button");
        if (button) button.click();
      }, 50);
    }
  }

  // A starting document may come in the fragment (#query=...&headers=...): a `query` in the URL's
  // search part would be run by the server as a GET request instead of opening GraphiQL.
  const search = new URLSearchParams(window.location.hash.slice(1));
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  function render() {
    const remembered = window.localStorage.getItem(HEADERS_KEY);
    root.render(
      React.createElement(GraphiQL, {
        fetcher,
        onTabChange,
        defaultEditorToolsVisibility: true,
        query: search.get("query") || undefined,
        headers: search.get("headers") || undefined,
        defaultHeaders: remembered ? JSON.stringify(JSON.parse(remembered), null, 2) : undefined,
        isHeadersEditorEnabled: true,
        shouldPersistHeaders: true,
      })
    );
  }
  render();
})();
