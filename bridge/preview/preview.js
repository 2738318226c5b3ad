// transflower preview: draws the streamed skeleton with a plain 2D canvas and a perspective camera.
// Joints arrive in Unity's frame (left-handed, Y up, metres); we draw in a right-handed frame (x -> -x).
(function () {
  "use strict";
  const canvas = document.getElementById("view");
  const ctx = canvas.getContext("2d");
  const el = (id) => document.getElementById(id);
  const RIGHT = "#ff8c1a", LEFT = "#36c5f0", CENTER = "#ff8c1a", JOINT = "#ffe3c2", GRID = "#2c313c";

  let data = { joints: [], parents: [], names: [], frame: 0, status: "waiting", fps: 30 };
  let wsState = "connecting";
  let renderFrames = 0, dataFrames = 0, renderFps = 0, dataFps = 0, lastRate = performance.now();
  let lastFrameNo = -1, center = [0, 1, 0];

  function accept(msg) {
    if (!msg || !Array.isArray(msg.joints)) return;
    if (msg.frame !== lastFrameNo) { dataFrames++; lastFrameNo = msg.frame; }
    data = msg;
  }

  // ---------------------------------------------------------------------------------- transport
  function poll() {
    fetch("pose.json", { cache: "no-store" }).then((r) => r.json()).then(accept).catch(() => {});
  }
  function connect() {
    let ws;
    try {
      ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    } catch (e) { wsState = "no WebSocket"; setTimeout(connect, 1000); return; }
    wsState = "connecting";
    ws.onopen = () => { wsState = "connected"; };
    ws.onmessage = (ev) => { try { accept(JSON.parse(ev.data)); } catch (e) { /* ignore */ } };
    ws.onclose = () => { wsState = "disconnected, retrying"; setTimeout(connect, 1000); };
    ws.onerror = () => { try { ws.close(); } catch (e) { /* ignore */ } };
  }
  poll();
  connect();
  setInterval(() => { if (wsState !== "connected") poll(); }, 250);

  // ------------------------------------------------------------------------------------ camera
  const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const norm = (a) => { const n = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / n, a[1] / n, a[2] / n]; };

  function camera(t, w, h) {
    const angle = 0.6 + t * 0.00015;  // slow orbit (about 40 s per turn)
    const target = [center[0], 0.95, center[2]];
    const eye = [target[0] + 3.6 * Math.sin(angle), 1.7, target[2] + 3.6 * Math.cos(angle)];
    const f = norm(sub(target, eye));
    const r = norm(cross(f, [0, 1, 0]));
    const u = cross(r, f);
    const focal = h / (2 * Math.tan((50 * Math.PI / 180) / 2));
    return function project(p) {
      const d = sub(p, eye);
      const z = dot(d, f);
      if (z < 0.05) return null;
      return [w / 2 + focal * dot(d, r) / z, h / 2 - focal * dot(d, u) / z, z];
    };
  }

  function line(project, a, b, color, width) {
    const pa = project(a), pb = project(b);
    if (!pa || !pb) return;
    ctx.strokeStyle = color; ctx.lineWidth = width;
    ctx.beginPath(); ctx.moveTo(pa[0], pa[1]); ctx.lineTo(pb[0], pb[1]); ctx.stroke();
  }

  // -------------------------------------------------------------------------------------- draw
  function draw(now) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#12141a"; ctx.fillRect(0, 0, w, h);

    const pts = data.joints.map((p) => [-p[0], p[1], p[2]]);  // Unity (left-handed) -> right-handed
    if (pts.length) {  // follow the dancer smoothly on the floor
      center[0] += (pts[0][0] - center[0]) * 0.05; center[2] += (pts[0][2] - center[2]) * 0.05;
    }
    const project = camera(now, w, h);

    // ground grid, 0.5 m cells, around the dancer
    const gx = Math.round(center[0] * 2) / 2, gz = Math.round(center[2] * 2) / 2;
    for (let i = -6; i <= 6; i++) {
      line(project, [gx + i * 0.5, 0, gz - 3], [gx + i * 0.5, 0, gz + 3], GRID, 1);
      line(project, [gx - 3, 0, gz + i * 0.5], [gx + 3, 0, gz + i * 0.5], GRID, 1);
    }
    // shadow
    ctx.lineCap = "round";
    data.parents.forEach((p, j) => {
      if (p >= 0 && pts[j] && pts[p]) line(project, [pts[p][0], 0, pts[p][2]], [pts[j][0], 0, pts[j][2]], "#1c1f27", 6);
    });
    // bones, far ones first
    const segs = [];
    data.parents.forEach((p, j) => {
      if (p < 0 || !pts[j] || !pts[p]) return;
      const a = project(pts[p]), b = project(pts[j]);
      if (a && b) segs.push([a, b, (a[2] + b[2]) / 2, data.names[j] || ""]);
    });
    segs.sort((s, t) => t[2] - s[2]);
    for (const [a, b, z, name] of segs) {
      ctx.strokeStyle = name.startsWith("Left") ? LEFT : name.startsWith("Right") ? RIGHT : CENTER;
      ctx.lineWidth = Math.max(2, 14 / z);
      ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
    }
    ctx.fillStyle = JOINT;
    for (const p of pts) {
      const s = project(p);
      if (!s) continue;
      ctx.beginPath(); ctx.arc(s[0], s[1], Math.max(2, 10 / s[2]), 0, 2 * Math.PI); ctx.fill();
    }

    // HUD
    renderFrames++;
    if (now - lastRate >= 1000) {
      renderFps = renderFrames * 1000 / (now - lastRate); dataFps = dataFrames * 1000 / (now - lastRate);
      renderFrames = 0; dataFrames = 0; lastRate = now;
    }
    const conn = el("conn");
    conn.textContent = "page link: " + wsState;
    conn.className = wsState === "connected" ? "ok" : "warn";
    const st = String(data.status || "");
    const status = el("status");
    status.textContent = st;
    status.className = /lost|waiting|error|unavailable/.test(st) ? "warn" : "ok";
    el("rates").textContent = "render " + renderFps.toFixed(0) + " fps | data " + dataFps.toFixed(0) +
      " fps | frame " + (data.frame || 0) + " | " + pts.length + " joints";
    requestAnimationFrame(draw);
  }
  requestAnimationFrame(draw);
})();
