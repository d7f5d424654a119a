// The job's desktop through noVNC, over this session's WebSocket (`socket` next to this page),
// which the gateway relays to the job's VNC server.
import RFB from "/session-assets/desktop/novnc/core/rfb.js";

const status = document.getElementById("status");
const url = new URL("socket", location.href);
url.protocol = location.protocol === "https:" ? "wss:" : "ws:";

const rfb = new RFB(document.getElementById("screen"), url.href, { shared: true });
rfb.scaleViewport = true; // the whole desktop in the window
rfb.resizeSession = false; // the job's desktop keeps its own size
window.jobgateDesktop = rfb; // for tests and the curious

rfb.addEventListener("connect", () => {
  status.style.display = "none";
  window.jobgateDesktopConnected = true;
});
rfb.addEventListener("disconnect", (event) => {
  status.style.display = "block";
  status.className = "ended";
  status.textContent = event.detail.clean ? "The desktop closed." : "Disconnected from the desktop.";
  window.jobgateDesktopDisconnected = true;
});
rfb.addEventListener("securityfailure", (event) => {
  status.textContent = `The desktop refused the connection: ${event.detail.reason}`;
});
