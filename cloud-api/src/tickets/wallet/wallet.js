// The tixgate wallet: shows a rotating ticket code (barcode v2).
//
// The holder key is made here with WebCrypto Ed25519, kept non-extractable in
// IndexedDB, and never leaves the browser: the server only ever sees its public
// half, which it signs into the ticket's static part. Every few seconds the page
// signs (static part, time) and draws `TX2:` + Base45 of static part, time and
// signature as a QR code. Gates check both signatures offline and refuse a code
// older than their window, so a screenshot stops working within seconds.
// The byte layout is docs/barcode-format.md; schema/src/barcode is the reference.
"use strict";

(function () {
  const DOMAIN = new TextEncoder().encode("tixgate/ticket-shown/v2\0");
  const BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
  const token = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const $ = (id) => document.getElementById(id);

  function fromHex(hex) {
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }

  function toHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  // Unsigned LEB128, as schema/src/barcode/wire.rs writes it (exact below 2^53).
  function varint(n) {
    const out = [];
    for (;;) {
      const low = n % 128;
      n = Math.floor(n / 128);
      if (n === 0) { out.push(low); return new Uint8Array(out); }
      out.push(low | 0x80);
    }
  }

  // RFC 9285.
  function base45(bytes) {
    let out = "";
    for (let i = 0; i + 1 < bytes.length; i += 2) {
      const n = bytes[i] * 256 + bytes[i + 1];
      out += BASE45[n % 45] + BASE45[Math.floor(n / 45) % 45] + BASE45[Math.floor(n / 2025)];
    }
    if (bytes.length % 2 === 1) {
      const n = bytes[bytes.length - 1];
      out += BASE45[n % 45] + BASE45[Math.floor(n / 45)];
    }
    return out;
  }

  // One database per browser; records are keyed by the wallet link's token,
  // which is the same at every visit (it carries no issue time).
  function store(mode, run) {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open("tixgate-wallet", 1);
      open.onupgradeneeded = () => {
        open.result.createObjectStore("keys");
        open.result.createObjectStore("tickets");
      };
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        const tx = db.transaction(["keys", "tickets"], mode);
        const request = run(tx);
        tx.oncomplete = () => { db.close(); resolve(request && request.result); };
        tx.onerror = () => { db.close(); reject(tx.error); };
        tx.onabort = () => { db.close(); reject(tx.error || new Error("storage aborted")); };
      };
    });
  }
  const load = (kind) => store("readonly", (tx) => tx.objectStore(kind).get(token));
  const save = (kind, value) => store("readwrite", (tx) => tx.objectStore(kind).put(value, token));

  // The key is added, never overwritten: if another tab stored one first, that
  // one is the key the ticket is (or will be) bound to.
  async function holderKey() {
    const existing = await load("keys");
    if (existing) return existing;
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    try {
      await store("readwrite", (tx) => tx.objectStore("keys").add(pair, token));
    } catch (_) {
      return load("keys");
    }
    if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => {});
    return pair;
  }

  // A refusal the server meant (bad link, cancelled, bound elsewhere), as
  // opposed to a network that failed: only these stop the wallet.
  class Refused extends Error {}

  // Binds this browser's key (the server answers the same for the same key) and
  // keeps the answer, so the ticket also opens without a network at the door.
  async function bind(pair) {
    const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    const sent = Date.now();
    const response = await fetch("/wallet/" + encodeURIComponent(token) + "/bind", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ holder_key: toHex(publicKey) }),
      signal: AbortSignal.timeout(8000),
    });
    const body = await response.json();
    if (response.status >= 400 && response.status < 500) throw new Refused(body.detail || response.statusText);
    if (!response.ok) throw new Error(body.detail || response.statusText);
    // The server's whole second is taken as the middle of the round trip.
    body.clock_offset_ms = body.server_time * 1000 + 500 - (sent + Date.now()) / 2;
    await save("tickets", body);
    return body;
  }

  // Level L: on a screen nothing tears or stains the code, and the fewer, larger
  // modules read better from photos with glare and moiré than M's extra
  // correction (tixgate-bench codes: version 8 instead of 10). Modules are whole
  // device pixels, so the code fills the room on high-density screens.
  function draw(text) {
    const qr = qrcode(0, "L");
    qr.addData(text, "Alphanumeric");
    qr.make();
    const modules = qr.getModuleCount();
    const quiet = 4;
    const ratio = window.devicePixelRatio || 1;
    const room = Math.min(window.innerWidth - 32, 520) * ratio;
    const scale = Math.max(2, Math.floor(room / (modules + 2 * quiet)));
    const canvas = $("code");
    canvas.width = canvas.height = (modules + 2 * quiet) * scale;
    canvas.style.width = canvas.style.height = canvas.width / ratio + "px";
    const g = canvas.getContext("2d");
    g.fillStyle = "#fff";
    g.fillRect(0, 0, canvas.width, canvas.height);
    g.fillStyle = "#000";
    for (let r = 0; r < modules; r++) {
      for (let c = 0; c < modules; c++) {
        if (qr.isDark(r, c)) g.fillRect((c + quiet) * scale, (r + quiet) * scale, scale, scale);
      }
    }
    canvas.dataset.version = String((modules - 17) / 4);
  }

  async function main() {
    if (!window.crypto || !crypto.subtle || !window.indexedDB) {
      throw new Error("This browser cannot show rotating tickets; please update it.");
    }
    const pair = await holderKey();
    const saved = await load("tickets");
    // With a saved ticket the code shows at once, and the server is asked in
    // the background; without one, the first answer is needed.
    let timer = null;
    let current = saved || (await bind(pair).catch((error) => {
      if (error instanceof Refused) throw error;
      throw new Error("No connection, and this ticket was never opened on this phone.");
    }));
    if (saved) {
      bind(pair).then((fresh) => { current = fresh; }, (error) => {
        if (error instanceof Refused) stop(error);
        else $("status").textContent = "Offline: showing the ticket kept on this phone.";
      });
    }
    $("event").textContent = current.event_title;
    const when = new Date(current.starts_at * 1000).toLocaleString();
    $("details").textContent = [current.ticket_type, current.seat && "Seat " + current.seat, current.holder_name, when]
      .filter(Boolean).join(" · ");

    let shownSlot = -1;
    let busy = false;
    async function tick() {
      const t = current;
      const nowMs = Date.now() + t.clock_offset_ms;
      const now = Math.floor(nowMs / 1000);
      const slot = now - (now % t.refresh_s);
      $("clock").textContent = new Date(nowMs).toLocaleTimeString();
      $("live").firstElementChild.style.width = (((nowMs / 1000) % t.refresh_s) / t.refresh_s * 100) + "%";
      if (slot === shownSlot || busy) return;
      busy = true;
      try {
        const shown = concat(fromHex(t.static_part), varint(slot));
        const signature = new Uint8Array(
          await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, concat(DOMAIN, shown)));
        draw("TX2:" + base45(concat(shown, signature)));
        shownSlot = slot;
        document.body.dataset.shownAt = String(slot);
      } finally {
        busy = false;
      }
    }
    await tick();
    if (!document.body.dataset.error) timer = setInterval(() => { tick().catch(fail); }, 200);
    // A refusal clears the code: a cancelled ticket must not keep rotating.
    function stop(error) {
      if (timer !== null) clearInterval(timer);
      const canvas = $("code");
      canvas.width = canvas.height = 1;
      fail(error);
    }
  }

  function fail(error) {
    $("status").textContent = error.message || String(error);
    document.body.dataset.error = "1";
  }

  main().catch(fail);
})();
