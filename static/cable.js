/* inboxgate realtime client: Action Cable over AnyCable's extended protocol
 * (actioncable-v1-ext-json), shared by the widget and the agent console. No dependencies.
 *
 *   var cable = new InboxGateCable("wss://gateway/cable", {onStatus: fn});
 *   var id = cable.subscribe({channel: "RoomChannel", pubsub_token: t}, {
 *     positions: saved,              // {stream_id: {epoch, offset}} from an earlier page
 *     onMessage: fn(message, meta),  // each broadcast once (offsets deduplicated)
 *     onPositions: fn(positions),    // persist them to resume after a reload
 *     onResync: fn(),                // history could not be replayed: refetch over HTTP
 *   });
 *
 * Why not @rails/actioncable: it cannot resume. This client keeps the session id and the last
 * offset of every stream, so after a dropped socket or a restarted gateway it receives exactly
 * what it missed (the server's event log), and it reconnects quickly (the widget's users are
 * waiting for an answer).
 */
(function (root) {
  "use strict";
  if (root.InboxGateCable) return;

  var PROTOCOL = "actioncable-v1-ext-json";
  var STALE_MS = 8000; // the server pings every 3 s; two missed pings mean a dead socket
  var MAX_BACKOFF_MS = 5000;

  function Cable(url, options) {
    this.url = url;
    this.options = options || {};
    this.subs = {}; // identifier string -> subscription
    this.sid = "";
    this.ws = null;
    this.attempt = 0;
    this.closed = false;
    this.connected = false;
    this.lastFrame = 0;
    this.timer = null;
    var self = this;
    this.watchdog = setInterval(function () { self.check(); }, 2000);
    this.wake = function () { self.reconnectNow(); };
    root.addEventListener("online", this.wake);
    root.addEventListener("focus", this.wake);
    this.open();
  }

  Cable.prototype.status = function (value) {
    this.connected = value === "connected";
    if (this.options.onStatus) this.options.onStatus(value);
  };

  Cable.prototype.open = function () {
    if (this.closed) return;
    var url = this.url + (this.sid ? (this.url.indexOf("?") < 0 ? "?" : "&") + "sid=" + encodeURIComponent(this.sid) : "");
    var ws;
    try {
      ws = new WebSocket(url, PROTOCOL);
    } catch (err) {
      this.schedule();
      return;
    }
    var self = this;
    this.ws = ws;
    this.lastFrame = Date.now();
    this.status("connecting");
    ws.onmessage = function (event) { if (self.ws === ws) self.receive(event.data); };
    ws.onclose = function () {
      if (self.ws !== ws) return;
      self.ws = null;
      self.status("disconnected");
      self.schedule();
    };
  };

  Cable.prototype.schedule = function () {
    if (this.closed || this.timer) return;
    var self = this;
    var delay = Math.min(MAX_BACKOFF_MS, 250 * Math.pow(2, this.attempt++));
    delay = delay * (0.75 + Math.random() * 0.5); // spread the reconnects of many tabs
    this.timer = setTimeout(function () { self.timer = null; self.open(); }, delay);
  };

  Cable.prototype.reconnectNow = function () {
    if (this.closed || this.ws) return;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this.open();
  };

  Cable.prototype.check = function () {
    if (this.ws && this.ws.readyState === 1 && Date.now() - this.lastFrame > STALE_MS) {
      var ws = this.ws;
      this.ws = null; // keep the sid: a stale socket may be restored
      ws.close();
      this.status("disconnected");
      this.schedule();
    }
  };

  Cable.prototype.send = function (frame) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(frame));
  };

  Cable.prototype.receive = function (raw) {
    this.lastFrame = Date.now();
    var frame;
    try { frame = JSON.parse(raw); } catch (err) { return; }
    var sub = frame.identifier !== undefined ? this.subs[frame.identifier] : null;
    switch (frame.type) {
      case "welcome": return this.welcome(frame);
      case "ping": return;
      case "disconnect":
        this.sid = ""; // a server-side disconnect never restores (the reference client agrees)
        if (frame.reconnect === false) this.closed = true;
        return;
      case "confirm_subscription":
        if (sub) { sub.confirmed = true; this.attempt = 0; }
        return;
      case "reject_subscription":
        if (sub && sub.onReject) sub.onReject();
        return;
      case "confirm_history": return;
      case "reject_history":
        if (sub && sub.onResync) sub.onResync();
        return;
    }
    if (sub && frame.message) this.deliver(sub, frame);
  };

  Cable.prototype.welcome = function (frame) {
    var restored = frame.restored ? frame.restored_ids || [] : [];
    this.sid = frame.sid || "";
    this.attempt = 0;
    this.status("connected");
    for (var id in this.subs) {
      var sub = this.subs[id];
      if (restored.indexOf(id) >= 0) {
        this.send({command: "history", identifier: id, history: this.history(sub)});
      } else {
        sub.confirmed = false;
        this.send({command: "subscribe", identifier: id, history: this.history(sub)});
      }
    }
  };

  Cable.prototype.history = function (sub) {
    var history = {streams: {}};
    for (var stream in sub.positions) {
      var pos = sub.positions[stream];
      history.streams[stream] = {epoch: pos.epoch, offset: pos.offset};
    }
    // Before the first broadcast there is no position: replay by time what may have been sent
    // between the HTTP fetch and this subscription (duplicates are dropped by message id).
    if (!Object.keys(history.streams).length) history.since = sub.since;
    return history;
  };

  Cable.prototype.deliver = function (sub, frame) {
    var meta = null;
    if (frame.stream_id && frame.epoch) {
      var pos = sub.positions[frame.stream_id];
      if (pos && pos.epoch === frame.epoch && frame.offset <= pos.offset) return; // seen
      sub.positions[frame.stream_id] = {epoch: frame.epoch, offset: frame.offset};
      meta = {stream: frame.stream_id, epoch: frame.epoch, offset: frame.offset};
      if (sub.onPositions) sub.onPositions(sub.positions);
    }
    if (sub.onMessage) sub.onMessage(frame.message, meta);
  };

  Cable.prototype.subscribe = function (params, handlers) {
    var id = JSON.stringify(params);
    var sub = this.subs[id] = {
      positions: handlers.positions || {},
      since: Math.floor(Date.now() / 1000) - 5,
      confirmed: false,
      onMessage: handlers.onMessage,
      onPositions: handlers.onPositions,
      onResync: handlers.onResync,
      onReject: handlers.onReject
    };
    if (this.connected) this.send({command: "subscribe", identifier: id, history: this.history(sub)});
    return id;
  };

  Cable.prototype.unsubscribe = function (id) {
    if (!this.subs[id]) return;
    delete this.subs[id];
    this.send({command: "unsubscribe", identifier: id});
  };

  Cable.prototype.perform = function (id, action, data) {
    var payload = {action: action};
    for (var key in data || {}) payload[key] = data[key];
    this.send({command: "message", identifier: id, data: JSON.stringify(payload)});
  };

  Cable.prototype.close = function () {
    this.closed = true;
    clearInterval(this.watchdog);
    if (this.timer) clearTimeout(this.timer);
    root.removeEventListener("online", this.wake);
    root.removeEventListener("focus", this.wake);
    if (this.ws) { var ws = this.ws; this.ws = null; ws.close(); }
  };

  /* ws(s)://host/cable for an http(s) base URL. */
  Cable.urlFor = function (base) {
    return base.replace(/^http/, "ws").replace(/\/$/, "") + "/cable";
  };

  root.InboxGateCable = Cable;
})(window);
