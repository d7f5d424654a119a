// A shell inside the job, over this session's WebSocket (`socket` next to this page): keys go
// as binary messages, the terminal's size as {"resize": [columns, rows]}; output comes back as
// binary messages, and {"exit": code} when the shell ends.
(function () {
  "use strict";
  // A little line height: at 1.0 the canvas clips underscores off the bottom of each row.
  const term = new Terminal({
    cursorBlink: true,
    fontSize: 14,
    lineHeight: 1.2,
    scrollback: 5000,
    theme: { background: "#1e1e1e" },
  });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById("terminal"));
  fit.fit();
  window.jobgateTerminal = term; // for tests and the curious: the terminal's buffer

  const url = new URL("socket", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  const encoder = new TextEncoder();

  function ended(text) {
    const banner = document.getElementById("ended");
    banner.textContent = text;
    banner.style.display = "block";
    term.options.disableStdin = true;
  }
  function sendSize() {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ resize: [term.cols, term.rows] }));
    }
  }

  socket.addEventListener("open", () => {
    sendSize();
    term.focus();
    window.jobgateTerminalOpen = true; // keys typed from now on reach the shell
  });
  socket.addEventListener("message", (event) => {
    if (typeof event.data === "string") {
      const message = JSON.parse(event.data);
      if ("exit" in message) ended(`The shell exited (code ${message.exit}).`);
    } else {
      term.write(new Uint8Array(event.data));
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 1001) ended("The job has ended.");
    else if (event.code !== 1000) ended(`Disconnected (${event.code}).`);
    window.jobgateTerminalClosed = event.code;
  });
  term.onData((data) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
  });
  term.onResize(sendSize);
  window.addEventListener("resize", () => fit.fit());
})();
