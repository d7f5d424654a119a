// GraphiQL's sign-in through the site's OpenID Connect provider (`auth.oidc.graphiql_client_id`):
// the authorization-code flow with PKCE (RFC 7636), in this page alone, with no library.
//
// - "Sign in" goes to the provider's login page with a code challenge; back here, the code and
//   its verifier buy an access token (and a refresh token) from the token endpoint.
// - The access token goes with every HTTP request and in every new subscription's
//   `connection_init` (`window.jobgateSignIn.headers()`), unless the Headers editor names an
//   Authorization of its own.
// - It is refreshed before it expires; "Sign out" forgets it (and ends the provider's session).
// - Tokens live in this tab's sessionStorage: closing the tab forgets them.
//
// Without the page's `jobgate-sign-in` config (sign-in not configured), this does nothing.
(function () {
  "use strict";

  const element = document.getElementById("jobgate-sign-in");
  const TOKENS = "jobgate:tokens";
  const PENDING = "jobgate:sign-in";
  const REFRESH_MARGIN_MS = 10000; // refresh this long before the access token expires
  const listeners = new Set();
  let config = null;
  let tokens = null;
  let refreshTimer = null;

  const redirectUri = window.location.origin + window.location.pathname;

  function base64url(bytes) {
    let text = "";
    for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
    return window.btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function randomText() {
    return base64url(window.crypto.getRandomValues(new Uint8Array(32)));
  }

  // The token's own claims, for the name shown; the gateway checks its signature, not this.
  function claims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(window.atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    } catch (_error) {
      return {};
    }
  }

  function save(next) {
    tokens = next;
    if (next) window.sessionStorage.setItem(TOKENS, JSON.stringify(next));
    else window.sessionStorage.removeItem(TOKENS);
    schedule();
    show();
    for (const listener of listeners) listener();
  }

  async function tokenRequest(fields) {
    const response = await fetch(config.token_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(Object.assign({ client_id: config.clientId }, fields)),
    });
    if (!response.ok) throw new Error("the sign-in was refused (" + response.status + ")");
    const body = await response.json();
    return {
      access: body.access_token,
      refresh: body.refresh_token || null,
      id: body.id_token || (tokens && tokens.id) || null,
      expiresAt: Date.now() + 1000 * (body.expires_in || 60),
    };
  }

  function schedule() {
    if (refreshTimer !== null) window.clearTimeout(refreshTimer);
    refreshTimer = null;
    if (!tokens || !tokens.refresh) return;
    const wait = Math.max(0, tokens.expiresAt - Date.now() - REFRESH_MARGIN_MS);
    refreshTimer = window.setTimeout(refresh, wait);
  }

  async function refresh() {
    try {
      save(await tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh }));
    } catch (_error) {
      save(null); // the provider ended the session: sign in again
    }
  }

  async function signIn() {
    const verifier = randomText();
    const state = randomText();
    const digest = await window.crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    window.sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
    const url = new URL(config.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: config.clientId,
      redirect_uri: redirectUri,
      scope: "openid",
      state,
      code_challenge: base64url(digest),
      code_challenge_method: "S256",
    }).toString();
    window.location.assign(url.toString());
  }

  function signOut() {
    const idToken = tokens && tokens.id;
    save(null);
    if (config.end_session_endpoint && idToken) {
      const url = new URL(config.end_session_endpoint);
      url.search = new URLSearchParams({
        id_token_hint: idToken,
        post_logout_redirect_uri: redirectUri,
      }).toString();
      window.location.assign(url.toString());
    }
  }

  // Back from the provider with `?code=...&state=...`: trade the code for tokens.
  async function finishSignIn() {
    const params = new URLSearchParams(window.location.search);
    const code = params.get("code");
    if (!code && !params.get("error")) return;
    const pending = JSON.parse(window.sessionStorage.getItem(PENDING) || "null");
    window.sessionStorage.removeItem(PENDING);
    // The page's own address again, without the code (a reload must not use it twice).
    window.history.replaceState(null, "", redirectUri + window.location.hash);
    if (!code || !pending || params.get("state") !== pending.state) return;
    save(
      await tokenRequest({
        grant_type: "authorization_code",
        code,
        redirect_uri: redirectUri,
        code_verifier: pending.verifier,
      })
    );
  }

  function show() {
    const name = tokens ? claims(tokens.access).preferred_username || "you" : null;
    document.getElementById("signed-in-as").textContent = name ? "Signed in as " + name : "";
    document.getElementById("sign-in-button").textContent = name ? "Sign out" : "Sign in";
  }

  window.jobgateSignIn = {
    // What every request carries while signed in.
    headers() {
      return tokens ? { Authorization: "Bearer " + tokens.access } : {};
    },
    onChange(listener) {
      listeners.add(listener);
    },
    ready: Promise.resolve(),
  };

  if (!element) return;
  config = JSON.parse(element.textContent);
  document.body.classList.add("with-sign-in");
  try {
    tokens = JSON.parse(window.sessionStorage.getItem(TOKENS) || "null");
  } catch (_error) {
    tokens = null;
  }
  if (tokens && tokens.expiresAt <= Date.now() && !tokens.refresh) tokens = null;
  document.getElementById("sign-in-button").addEventListener("click", () => {
    if (tokens) signOut();
    else signIn();
  });
  show();
  window.jobgateSignIn.ready = finishSignIn()
    .catch((error) => {
      document.getElementById("signed-in-as").textContent = String(error.message || error);
    })
    .then(() => {
      if (tokens && tokens.expiresAt - REFRESH_MARGIN_MS <= Date.now()) return refresh();
      schedule();
      return undefined;
    });
})();
