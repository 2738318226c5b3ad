// transflower preview: the streamed dance on a VRM avatar (three.js + @pixiv/three-vrm from vrm_bundle.js),
// or as a skeleton (?view=skeleton, or when WebGL is unavailable), plus the performer controls.
// ?overlay (for OBS and other streaming software): the dancer alone on a transparent page, no telemetry,
// controls, floor grid or background (index.html sets the "overlay" class before the page draws).
//
// The server sends Unity-frame values exactly as VMC carries them (left-handed, Y up, metres, quaternions
// x y z w): a "hello" with the bone layout and the stream's hip height, then a "pose" per frame with the
// floor-level root and each bone's local rotation. VRM 1.0 / glTF is right-handed with the avatar facing +Z,
// so a Unity rotation (x, y, z, w) is (x, -y, -z, w) there and a position (x, y, z) is (-x, y, z).
// The rotations go onto three-vrm's normalized humanoid (identity rest rotations, as in Unity and VSeeFace);
// the hips move by the root scaled to this avatar's own hip height, so any avatar keeps its proportions and
// its feet on the floor.
(function () {
  "use strict";
  const el = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  let view = params.get("view") === "skeleton" ? "skeleton" : "avatar";
  const overlay = document.documentElement.classList.contains("overlay");
  const T = window.TFVRM || null;  // { THREE, GLTFLoader, VRMLoaderPlugin, VRMUtils }
  const RIGHT = "#ff8c1a", LEFT = "#36c5f0", CENTER = "#ff8c1a", JOINT = "#ffe3c2", GRID = "#2c313c";

  const tf = window.__tf = { ready: false, error: null, applied: 0, view: () => view, hello: null, pose: null,
                             controlsSent: [], overlay: overlay };
  let hello = null, pose = null, lastFrameNo = -1, ws = null, wsState = "connecting";
  let renderFrames = 0, dataFrames = 0, renderFps = 0, dataFps = 0, lastRate = performance.now();

  // ------------------------------------------------------------------------------------- transport
  function accept(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "hello") { hello = tf.hello = msg; buildStyles(msg.styles || []); applyRanges(msg.ranges); showValues(msg.values); return; }
    if (msg.type !== "pose" || !Array.isArray(msg.rots)) return;
    if (msg.frame !== lastFrameNo) { dataFrames++; lastFrameNo = msg.frame; }
    pose = tf.pose = msg;
    showValues(msg.values);
  }
  function poll() {
    fetch("pose.json", { cache: "no-store" }).then((r) => r.json()).then((m) => {
      accept(Object.assign({}, m, { type: "hello" })); accept(Object.assign({}, m, { type: "pose" }));
    }).catch(() => {});
  }
  function connect() {
    try {
      ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    } catch (e) { wsState = "no WebSocket"; setTimeout(connect, 1000); return; }
    wsState = "connecting";
    ws.onopen = () => { wsState = "connected"; };
    ws.onmessage = (ev) => { try { accept(JSON.parse(ev.data)); } catch (e) { /* ignore */ } };
    ws.onclose = () => { wsState = "disconnected, retrying"; ws = null; setTimeout(connect, 1000); };
    ws.onerror = () => { try { ws.close(); } catch (e) { /* ignore */ } };
  }
  poll();
  connect();
  setInterval(() => { if (wsState !== "connected") poll(); }, 250);

  // -------------------------------------------------------------------------------------- controls
  // the same addresses as the OSC control input (realtime/control.py)
  function sendControl(address, args) {
    tf.controlsSent.push([address, args]);
    if (ws && wsState === "connected") ws.send(JSON.stringify({ control: address, args: args }));
  }
  function buildStyles(styles) {
    const box = el("styles");
    if (box.dataset.names === JSON.stringify(styles)) return;
    box.dataset.names = JSON.stringify(styles);
    box.textContent = "";
    for (const name of styles) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = name; b.dataset.style = name;
      b.onclick = () => sendControl("/transflower/style", [name]);
      box.appendChild(b);
    }
  }
  // the sliders' ranges come from the server (transflower.control_spec), not from this page
  const SLIDERS = { "/transflower/temperature": "temperature", "/transflower/gain": "gain",
                    "/transflower/style_strength": "style-strength", "/transflower/correlation": "correlation" };
  function applyRanges(ranges) {
    if (!ranges) return;
    for (const [address, id] of Object.entries(SLIDERS)) {
      const r = ranges[address];
      if (Array.isArray(r) && r.length === 2) { el(id).min = r[0]; el(id).max = r[1]; }
    }
  }

  function showValues(values) {
    if (!values) return;
    const parts = [];
    for (const k of Object.keys(values)) {
      const v = values[k];
      parts.push(k + " " + (v === null ? "preset" : typeof v === "number" && !Number.isInteger(v) ? v.toFixed(2) : String(v)));
    }
    el("values").textContent = parts.length ? parts.join(" | ") : "";
    for (const b of el("styles").children) b.classList.toggle("active", b.dataset.style === values.style);
    if (typeof values.hold === "number" || typeof values.hold === "boolean") el("hold").checked = !!values.hold;
    const t = el("temperature"), g = el("gain"), st = el("style-strength");  // follow the engine unless the performer is dragging
    if (typeof values.temperature === "number" && document.activeElement !== t) {
      t.value = values.temperature; el("temperature-value").textContent = values.temperature.toFixed(2);
    }
    if (typeof values.gain === "number" && document.activeElement !== g) {
      g.value = values.gain; el("gain-value").textContent = values.gain.toFixed(1);
    }
    if (typeof values.style_strength === "number" && document.activeElement !== st) {
      st.value = values.style_strength; el("style-strength-value").textContent = values.style_strength.toFixed(2);
    }
    const rho = el("correlation");  // a number: the performer's noise correlation; null: the styles' presets
    if ("correlation" in values && document.activeElement !== rho) {
      if (typeof values.correlation === "number") {
        rho.value = values.correlation; el("correlation-value").textContent = values.correlation.toFixed(2);
      } else {
        el("correlation-value").textContent = "preset";
      }
    }
  }
  const temp = el("temperature"), gain = el("gain");
  temp.oninput = () => { el("temperature-value").textContent = Number(temp.value).toFixed(2); };
  temp.onchange = () => sendControl("/transflower/temperature", [Number(temp.value)]);
  gain.oninput = () => { el("gain-value").textContent = Number(gain.value).toFixed(1); };
  gain.onchange = () => sendControl("/transflower/gain", [Number(gain.value)]);
  const strength = el("style-strength");
  strength.oninput = () => { el("style-strength-value").textContent = Number(strength.value).toFixed(2); };
  strength.onchange = () => sendControl("/transflower/style_strength", [Number(strength.value)]);
  const rho = el("correlation");
  rho.oninput = () => { el("correlation-value").textContent = Number(rho.value).toFixed(2); };
  rho.onchange = () => sendControl("/transflower/correlation", [Number(rho.value)]);
  el("correlation-preset").onclick = () => sendControl("/transflower/correlation", []);
  el("hold").onchange = () => sendControl("/transflower/hold", [el("hold").checked ? 1 : 0]);
  el("reset").onclick = () => sendControl("/transflower/reset", []);
  el("view-toggle").onclick = () => setView(view === "avatar" ? "skeleton" : "avatar");
  // the raw telemetry (page link, the status line with its UDP error count, rates) stays out of the show's way
  // until asked for: the "telemetry" button or key T (never in an overlay)
  const telemetryShown = () => document.documentElement.classList.contains("telemetry");
  function setTelemetry(on) {
    document.documentElement.classList.toggle("telemetry", on && !overlay);
    el("telemetry-toggle").classList.toggle("active", telemetryShown());
  }
  el("telemetry-toggle").onclick = () => setTelemetry(!telemetryShown());
  window.addEventListener("keydown", (e) => {
    if ((e.key === "t" || e.key === "T") && !e.ctrlKey && !e.metaKey && !e.altKey && !e.repeat) setTelemetry(!telemetryShown());
  });
  tf.telemetryShown = telemetryShown;

  // ---------------------------------------------------------------------------- Unity-frame maths
  function qmul(a, b) {
    return [a[3] * b[0] + a[0] * b[3] + a[1] * b[2] - a[2] * b[1], a[3] * b[1] - a[0] * b[2] + a[1] * b[3] + a[2] * b[0],
            a[3] * b[2] + a[0] * b[1] - a[1] * b[0] + a[2] * b[3], a[3] * b[3] - a[0] * b[0] - a[1] * b[1] - a[2] * b[2]];
  }
  function qrot(q, v) {
    const u = [q[0], q[1], q[2]], w = q[3];
    const t = [2 * (u[1] * v[2] - u[2] * v[1]), 2 * (u[2] * v[0] - u[0] * v[2]), 2 * (u[0] * v[1] - u[1] * v[0])];
    return [v[0] + w * t[0] + u[1] * t[2] - u[2] * t[1], v[1] + w * t[1] + u[2] * t[0] - u[0] * t[2],
            v[2] + w * t[2] + u[0] * t[1] - u[1] * t[0]];
  }
  // FK over the stream's hierarchy with its rest offsets: global positions, Unity frame (the skeleton view)
  function streamFK() {
    if (!hello || !pose) return [];
    const n = hello.bones.length, pos = new Array(n), rot = new Array(n);
    for (let b = 0; b < n; b++) {
      const p = hello.parents[b], L = pose.rots[b], off = hello.rest[b];
      if (p < 0) {
        rot[b] = qmul(pose.root_rot, L);
        const h = qrot(pose.root_rot, off);
        pos[b] = [pose.root[0] + h[0], pose.root[1] + h[1], pose.root[2] + h[2]];
      } else {
        rot[b] = qmul(rot[p], L);
        const d = qrot(rot[p], off);
        pos[b] = [pos[p][0] + d[0], pos[p][1] + d[1], pos[p][2] + d[2]];
      }
    }
    return pos;
  }
  tf.skeleton = () => streamFK().map((p) => [-p[0], p[1], p[2]]);  // right-handed, as drawn

  // ------------------------------------------------------------------------------- the VRM avatar
  const c3 = el("view3d"), c2 = el("view2d");
  let renderer = null, scene = null, camera = null, vrm = null, isVrm0 = false, hipsRest = null, baseQuat = null;
  const camTarget = [0, 0.9, 0];

  function init3d() {
    if (!T) { tf.error = "vrm_bundle.js did not load"; return false; }
    const THREE = T.THREE;
    try {
      // an overlay needs a canvas with an alpha channel, cleared to alpha 0 around the avatar
      renderer = new THREE.WebGLRenderer({ canvas: c3, antialias: true, preserveDrawingBuffer: true, alpha: overlay });
    } catch (e) {
      tf.error = "no WebGL (" + e.message + "): skeleton view";
      return false;
    }
    renderer.setPixelRatio(window.devicePixelRatio || 1);
    scene = new THREE.Scene();
    if (overlay) renderer.setClearColor(0x000000, 0);
    else scene.background = new THREE.Color(0x12141a);
    tf.clearAlpha = renderer.getClearAlpha();
    camera = new THREE.PerspectiveCamera(40, 1, 0.05, 50);
    scene.add(new THREE.HemisphereLight(0xffffff, 0x303440, 2.2));
    const sun = new THREE.DirectionalLight(0xffffff, 1.6);
    sun.position.set(1.5, 3, 2);
    scene.add(sun);
    if (!overlay) scene.add(new THREE.GridHelper(10, 20, 0x3a4050, 0x2c313c));  // the floor (not in an overlay)
    const loader = new T.GLTFLoader();
    loader.register((parser) => new T.VRMLoaderPlugin(parser));
    loader.load("avatar.vrm", (gltf) => {
      vrm = gltf.userData.vrm;
      if (!vrm || !vrm.humanoid) { tf.error = "avatar.vrm is not a VRM humanoid"; return; }
      isVrm0 = vrm.meta && vrm.meta.metaVersion === "0";
      if (isVrm0) T.VRMUtils.rotateVRM0(vrm);  // VRM 0.x faces -Z: turn it to face +Z like VRM 1.0
      baseQuat = vrm.scene.quaternion.clone();
      scene.add(vrm.scene);
      const hips = vrm.humanoid.getNormalizedBoneNode("hips");
      hipsRest = hips.position.clone();
      tf.avatarHipsHeight = hipsRest.y;
      tf.ready = true;
    }, undefined, (e) => { tf.error = "cannot load avatar.vrm: " + (e && e.message ? e.message : e); });
    return true;
  }

  const camel = (name) => name[0].toLowerCase() + name.slice(1);
  function applyPose(THREE) {
    if (!vrm || !hello || !pose) return;
    const h = vrm.humanoid;
    for (let b = 0; b < hello.bones.length; b++) {
      const node = h.getNormalizedBoneNode(camel(hello.bones[b]));
      const q = pose.rots[b];
      if (!node || !q) continue;
      // Unity -> VRM 1.0 frame: (x, -y, -z, w); a VRM 0.x rig faces -Z in its own frame: (-x, -y, z, w) then
      if (isVrm0) node.quaternion.set(-q[0], -q[1], q[2], q[3]);
      else node.quaternion.set(q[0], -q[1], -q[2], q[3]);
    }
    // the hips: this avatar's own rest position plus the root's motion scaled to its hip height
    const s = hello.hips_height > 1e-3 ? hipsRest.y / hello.hips_height : 1;
    const r = pose.root;
    const rx = isVrm0 ? r[0] : -r[0], rz = isVrm0 ? -r[2] : r[2];
    h.getNormalizedBoneNode("hips").position.set(hipsRest.x + s * rx, hipsRest.y + s * r[1], hipsRest.z + s * rz);
    const rr = pose.root_rot;  // Root/Pos rotation turns the whole avatar (identity from transflower)
    vrm.scene.quaternion.set(rr[0], -rr[1], -rr[2], rr[3]).multiply(baseQuat);
    vrm.update(1 / 60);
    tf.applied++;
    tf.appliedFrame = pose.frame;
  }
  tf.bones = () => {  // world positions of the avatar's raw bones, after the last applied pose
    if (!vrm) return null;
    const out = {}, v = new T.THREE.Vector3();
    vrm.scene.updateMatrixWorld(true);
    for (const name of (hello ? hello.bones : [])) {
      const node = vrm.humanoid.getRawBoneNode(camel(name));
      if (node) { node.getWorldPosition(v); out[name] = [v.x, v.y, v.z]; }
    }
    return out;
  };

  tf.toScreen = (p) => {  // a world position (right-handed) -> CSS pixels [x, y] in the 3D view
    const v = new T.THREE.Vector3(p[0], p[1], p[2]).project(camera);
    return [(v.x + 1) / 2 * c3.clientWidth, (1 - v.y) / 2 * c3.clientHeight];
  };

  function setView(v) {
    view = v;
    c3.style.display = view === "avatar" ? "block" : "none";
    c2.style.display = view === "skeleton" ? "block" : "none";
    el("view-toggle").textContent = view === "avatar" ? "skeleton view" : "avatar view";
  }
  if (!init3d()) view = "skeleton";
  setView(view);

  // ------------------------------------------------------------------------------ skeleton (2D)
  const ctx = c2.getContext("2d");
  const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const norm = (a) => { const n = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / n, a[1] / n, a[2] / n]; };
  function project2d(w, h) {
    const target = [camTarget[0], 0.95, camTarget[2]];
    const eye = [target[0] + 1.2, 1.5, target[2] + 3.4];
    const f = norm(sub(target, eye)), r = norm(cross(f, [0, 1, 0])), u = cross(r, f);
    const focal = h / (2 * Math.tan((40 * Math.PI / 180) / 2));
    return (p) => {
      const d = sub(p, eye), z = dot(d, f);
      return z < 0.05 ? null : [w / 2 + focal * dot(d, r) / z, h / 2 - focal * dot(d, u) / z, z];
    };
  }
  function drawSkeleton(w, h) {
    const dpr = window.devicePixelRatio || 1;
    if (c2.width !== Math.round(w * dpr) || c2.height !== Math.round(h * dpr)) { c2.width = Math.round(w * dpr); c2.height = Math.round(h * dpr); }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (overlay) ctx.clearRect(0, 0, w, h);
    else { ctx.fillStyle = "#12141a"; ctx.fillRect(0, 0, w, h); }
    const project = project2d(w, h);
    const line = (a, b, color, width) => {
      const pa = project(a), pb = project(b);
      if (!pa || !pb) return;
      ctx.strokeStyle = color; ctx.lineWidth = width;
      ctx.beginPath(); ctx.moveTo(pa[0], pa[1]); ctx.lineTo(pb[0], pb[1]); ctx.stroke();
    };
    const gx = Math.round(camTarget[0] * 2) / 2, gz = Math.round(camTarget[2] * 2) / 2;
    for (let i = -6; i <= 6 && !overlay; i++) {  // the floor grid (not in an overlay)
      line([gx + i * 0.5, 0, gz - 3], [gx + i * 0.5, 0, gz + 3], GRID, 1);
      line([gx - 3, 0, gz + i * 0.5], [gx + 3, 0, gz + i * 0.5], GRID, 1);
    }
    const pts = tf.skeleton();
    if (!pts.length) return;
    ctx.lineCap = "round";
    const segs = [];
    hello.parents.forEach((p, j) => {
      if (p < 0) return;
      if (!overlay) line([pts[p][0], 0, pts[p][2]], [pts[j][0], 0, pts[j][2]], "#1c1f27", 6);  // shadow
      const a = project(pts[p]), b = project(pts[j]);
      if (a && b) segs.push([a, b, (a[2] + b[2]) / 2, hello.bones[j]]);
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
      if (s) { ctx.beginPath(); ctx.arc(s[0], s[1], Math.max(2, 8 / s[2]), 0, 2 * Math.PI); ctx.fill(); }
    }
  }

  // -------------------------------------------------------------------------------------- frame
  function frame(now) {
    const w = window.innerWidth, h = window.innerHeight;
    if (pose) {  // follow the dancer smoothly over the floor
      const x = -pose.root[0], z = pose.root[2];
      camTarget[0] += (x - camTarget[0]) * 0.05; camTarget[2] += (z - camTarget[2]) * 0.05;
    }
    if (view === "avatar" && renderer) {
      const THREE = T.THREE;
      applyPose(THREE);
      renderer.setSize(w, h, false);
      camera.aspect = w / h;
      camera.updateProjectionMatrix();
      camera.position.set(camTarget[0] + 1.2, 1.45, camTarget[2] + 3.6);
      camera.lookAt(camTarget[0], 0.85, camTarget[2]);
      renderer.render(scene, camera);
    } else {
      drawSkeleton(w, h);
    }
    renderFrames++;
    if (now - lastRate >= 1000) {
      renderFps = renderFrames * 1000 / (now - lastRate); dataFps = dataFrames * 1000 / (now - lastRate);
      renderFrames = 0; dataFrames = 0; lastRate = now;
    }
    const conn = el("conn");
    conn.textContent = "page link: " + wsState + (tf.error ? " | " + tf.error : "");
    conn.className = wsState === "connected" && !tf.error ? "ok" : "warn";
    const st = String(pose ? pose.status || "" : "waiting");
    el("status").textContent = st;
    el("status").className = /lost|waiting|error|unavailable/.test(st) ? "warn" : "ok";
    // a problem shows on the toggle while the telemetry is hidden
    el("telemetry-toggle").classList.toggle("warn", conn.className === "warn" || el("status").className === "warn");
    el("rates").textContent = "render " + renderFps.toFixed(0) + " fps | data " + dataFps.toFixed(0) + " fps | frame " +
      (pose ? pose.frame : 0) + " | " + view + (vrm ? " (" + (isVrm0 ? "VRM 0.x" : "VRM 1.0") + ")" : "");
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
})();
