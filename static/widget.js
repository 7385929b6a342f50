/* inboxgate web chat widget. One tag on any page:
 *
 *   <script src="https://gateway.example.com/static/widget.js" data-inbox="INBOX_IDENTIFIER" async></script>
 *
 * Optional, before the tag: window.inboxgateSettings = {identifier, identifier_hash, name, email,
 * title, open}. API: window.InboxGate.open(), close(), toggle(), setUser(identifier, attrs),
 * reset(), on(event, fn), off(event, fn); events: ready, open, close, message, unread, error.
 *
 * Every piece of text from the network goes through textContent, never innerHTML, and every
 * URL through safeUrl, so no message can inject markup.
 */
(function () {
  "use strict";
  if (window.InboxGate && window.InboxGate.version) return; // loaded twice

  var script = document.currentScript || document.querySelector("script[data-inbox]");
  var cfg = window.inboxgateSettings || {};
  var STATIC = new URL(".", script.src).href;
  var BASE = (cfg.gateway || script.getAttribute("data-gateway") || new URL("..", STATIC).href).replace(/\/$/, "");
  var INBOX = cfg.inbox || script.getAttribute("data-inbox");
  var API = BASE + "/public/api/v1/inboxes/" + encodeURIComponent(INBOX);
  var KEY = "inboxgate:" + BASE + ":" + INBOX;
  var RATINGS = {emoji: ["\uD83D\uDE1E", "\uD83D\uDE15", "\uD83D\uDE10", "\uD83D\uDE42", "\uD83D\uDE0D"], star: ["\u2605", "\u2605", "\u2605", "\u2605", "\u2605"]};
  var CHAT_ICON = "M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2z";
  var ATTACH_ICON = "M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6h-1.5z";
  var FIELD_NAMES = {fullName: "name", emailAddress: "email", phoneNumber: "phone_number"};

  var inbox = null;
  var store = load(); // {source_id, pubsub_token, identifier, conversation_id, positions, outbox}
  var identity = null; // {identifier, identifier_hash, name, email, phone_number} waiting for a contact
  var conversation = null; // {id, status, contact_last_seen_at}
  var messages = {}; // message id or echo id -> {data, el}
  var unread = 0;
  var cable = null;
  var subscription = null;
  var listeners = {};
  var sending = false;
  var creating = null;
  var typingTimer = null;
  var typingOn = false;
  var agentTypingTimer = null;
  var ui = {};

  // -- small helpers -------------------------------------------------------------------------

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (err) { return {}; }
  }
  function save() {
    try { localStorage.setItem(KEY, JSON.stringify(store)); } catch (err) { /* private mode */ }
  }
  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    for (var name in attrs || {}) {
      if (name === "text") el.textContent = attrs[name];
      else if (name === "on") for (var ev in attrs.on) el.addEventListener(ev, attrs.on[ev]);
      else if (attrs[name] !== null && attrs[name] !== undefined) el.setAttribute(name, attrs[name]);
    }
    (children || []).forEach(function (child) { if (child) el.appendChild(child); });
    return el;
  }
  /* Icons are inline SVG: emoji glyphs depend on the visitor's fonts. */
  function icon(path) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", "ig-icon");
    var shape = document.createElementNS(ns, "path");
    shape.setAttribute("d", path);
    svg.appendChild(shape);
    return svg;
  }
  /* Only a non-empty http(s) URL: a missing or empty one would resolve to the gateway's own
   * address (new URL(undefined, BASE) is BASE + "/undefined"), a broken image or link. */
  function safeUrl(value) {
    if (typeof value !== "string" || !value.trim()) return null;
    try {
      var url = new URL(value, BASE);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (err) { return null; }
  }
  function emit(name, detail) {
    (listeners[name] || []).slice().forEach(function (fn) {
      try { fn(detail); } catch (err) { if (window.console) console.error(err); }
    });
    window.dispatchEvent(new CustomEvent("inboxgate:" + name, {detail: detail}));
  }
  function request(method, path, body) {
    var init = {method: method, headers: {}};
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(API + path, init).then(function (res) {
      if (!res.ok) {
        var err = new Error("HTTP " + res.status);
        err.status = res.status;
        throw err;
      }
      return res.status === 204 ? null : res.text().then(function (t) { return t ? JSON.parse(t) : null; });
    });
  }
  function contactPath() { return "/contacts/" + encodeURIComponent(store.source_id); }
  function conversationPath() { return contactPath() + "/conversations/" + conversation.id; }
  function newEchoId() { return "ig-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10); }

  // -- the DOM ---------------------------------------------------------------------------------

  function build() {
    var css = h("link", {rel: "stylesheet", href: STATIC + "widget.css"});
    document.head.appendChild(css);
    ui.badge = h("span", {"class": "ig-badge", hidden: "", "aria-hidden": "true"});
    ui.launcher = h("button", {
      "class": "ig-launcher", type: "button", "aria-label": "Open chat", "aria-expanded": "false",
      "aria-controls": "ig-panel", on: {click: function () { api.toggle(); }}
    }, [icon(CHAT_ICON), ui.badge]);
    ui.title = h("h2", {"class": "ig-title", id: "ig-title", text: cfg.title || "Chat with us"});
    ui.status = h("p", {"class": "ig-status", role: "status", text: ""});
    ui.close = h("button", {"class": "ig-close", type: "button", "aria-label": "Close chat",
      on: {click: function () { api.close(); }}}, [h("span", {"aria-hidden": "true", text: "\u00D7"})]);
    ui.notice = h("p", {"class": "ig-notice", hidden: ""});
    ui.list = h("div", {"class": "ig-messages", role: "log", "aria-live": "polite", "aria-label": "Messages", tabindex: "0"});
    ui.typing = h("p", {"class": "ig-typing", hidden: "", text: "Agent is typing\u2026"});
    ui.prechat = h("form", {"class": "ig-prechat", hidden: "", "aria-label": "Before we start",
      on: {submit: submitPrechat}});
    ui.file = h("input", {type: "file", "class": "ig-file", id: "ig-file", "aria-label": "Attach a file",
      multiple: "", on: {change: function () { if (ui.file.files.length) sendFiles(ui.file.files); }}});
    ui.input = h("textarea", {"class": "ig-input", id: "ig-input", rows: "1", placeholder: "Type your message\u2026",
      "aria-label": "Message", on: {keydown: onKeydown, input: onInput}});
    ui.composer = h("form", {"class": "ig-composer", on: {submit: function (e) { e.preventDefault(); sendText(); }}}, [
      h("label", {"class": "ig-attach", "for": "ig-file", title: "Attach a file"},
        [icon(ATTACH_ICON), h("span", {"class": "ig-sr", text: "Attach a file"})]),
      ui.file, ui.input,
      h("button", {"class": "ig-send", type: "submit", text: "Send"})
    ]);
    ui.panel = h("section", {"class": "ig-panel", id: "ig-panel", role: "dialog", "aria-modal": "false",
      "aria-labelledby": "ig-title", hidden: "", on: {keydown: function (e) {
        if (e.key === "Escape") { api.close(); ui.launcher.focus(); }
      }}}, [
      h("header", {"class": "ig-header"}, [h("div", {}, [ui.title, ui.status]), ui.close]),
      ui.notice, ui.list, ui.typing, ui.prechat, ui.composer
    ]);
    ui.root = h("div", {"class": "ig-root"}, [ui.panel, ui.launcher]);
    document.body.appendChild(ui.root);
  }

  function setStatus(text) { ui.status.textContent = text; }

  function setUnread(count) {
    unread = count;
    ui.badge.hidden = !count;
    ui.badge.textContent = count > 9 ? "9+" : String(count);
    ui.launcher.setAttribute("aria-label", count ? "Open chat, " + count + " unread" : "Open chat");
    emit("unread", {count: count});
  }

  function isOpen() { return !ui.panel.hidden; }

  // -- inbox settings: business hours, pre-chat form ------------------------------------------

  function showInbox() {
    ui.title.textContent = cfg.title || inbox.name;
    var away = inbox.working_hours_enabled && !openNow(inbox);
    ui.notice.hidden = !away;
    ui.notice.textContent = away ? (inbox.out_of_office_message ||
      "We are away right now. Leave a message and we will reply when we are back.") : "";
    setStatus(away ? "Away" : "Online");
    showPrechat();
  }

  function openNow(info) {
    var parts = {};
    try {
      new Intl.DateTimeFormat("en-US", {timeZone: info.timezone || "UTC", weekday: "short", hour: "numeric",
        minute: "numeric", hourCycle: "h23"}).formatToParts(new Date()).forEach(function (p) { parts[p.type] = p.value; });
    } catch (err) { return true; }
    var day = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(parts.weekday);
    var hours = (info.working_hours || []).filter(function (w) { return w.day_of_week === day; })[0];
    if (!hours || hours.closed_all_day) return false;
    if (hours.open_all_day) return true;
    var now = Number(parts.hour) * 60 + Number(parts.minute);
    return now >= hours.open_hour * 60 + (hours.open_minutes || 0) && now < hours.close_hour * 60 + (hours.close_minutes || 0);
  }

  function prechatFields() {
    var options = inbox.pre_chat_form_options || {};
    var fields = options.pre_chat_fields || [{name: "emailAddress", required: true}, {name: "fullName", required: false}];
    return fields.filter(function (f) { return f.enabled !== false && FIELD_NAMES[f.name]; });
  }

  function showPrechat() {
    var needed = inbox && inbox.pre_chat_form_enabled && !store.source_id && !identity;
    ui.prechat.hidden = !needed;
    ui.composer.hidden = !!needed;
    if (!needed) return;
    ui.prechat.textContent = "";
    var message = (inbox.pre_chat_form_options || {}).pre_chat_message || "Please tell us who you are.";
    ui.prechat.appendChild(h("p", {text: message}));
    prechatFields().forEach(function (f) {
      var key = FIELD_NAMES[f.name];
      var label = f.label || {name: "Name", email: "Email", phone_number: "Phone"}[key];
      ui.prechat.appendChild(h("label", {}, [
        h("span", {text: label + (f.required ? " *" : "")}),
        h("input", {name: key, type: key === "email" ? "email" : key === "phone_number" ? "tel" : "text",
          required: f.required ? "" : null, autocomplete: key === "name" ? "name" : key === "email" ? "email" : "tel"})
      ]));
    });
    ui.prechat.appendChild(h("button", {type: "submit", "class": "ig-primary", text: "Start chat"}));
  }

  function submitPrechat(event) {
    event.preventDefault();
    var attrs = {};
    Array.prototype.forEach.call(ui.prechat.elements, function (el) { if (el.name && el.value) attrs[el.name] = el.value.trim(); });
    identity = attrs;
    ensureContact().then(function () {
      showPrechat();
      ui.input.focus();
    }, fail);
  }

  // -- contact session, conversation ----------------------------------------------------------

  function ensureContact() {
    if (store.source_id) return Promise.resolve();
    var body = {};
    var given = identity || {};
    ["identifier", "identifier_hash", "name", "email", "phone_number"].forEach(function (k) { if (given[k]) body[k] = given[k]; });
    return request("POST", "/contacts", body).then(function (contact) {
      store = {source_id: contact.source_id, pubsub_token: contact.pubsub_token, identifier: given.identifier || null,
        positions: {}, outbox: store.outbox || []};
      identity = null;
      save();
      connect();
    });
  }

  function ensureConversation() {
    if (conversation) return Promise.resolve();
    if (!creating) {
      creating = ensureContact().then(function () {
        if (conversation) return null;
        return request("POST", contactPath() + "/conversations", {}).then(adoptConversation);
      }).then(function () { creating = null; }, function (err) { creating = null; throw err; });
    }
    return creating;
  }

  function adoptConversation(conv) {
    conversation = {id: conv.id, status: conv.status, contact_last_seen_at: conv.contact_last_seen_at || 0};
    store.conversation_id = conv.id;
    save();
  }

  /* After a page load, a reset in another tab, or a lost event history: fetch the state. */
  function restore() {
    if (!store.source_id) { showPrechat(); return Promise.resolve(); }
    return request("GET", contactPath()).then(function () {
      connect();
      if (identity) return identify(identity);
      return null;
    }).then(function () {
      return request("GET", contactPath() + "/conversations");
    }).then(function (list) {
      var known = list.filter(function (c) { return c.id === store.conversation_id; })[0];
      var latest = known || list.sort(function (a, b) { return a.id - b.id; })[list.length - 1];
      if (!latest) return;
      adoptConversation(latest);
      (latest.messages || []).forEach(function (m) { upsert(m, false); });
      var seen = conversation.contact_last_seen_at;
      setUnread((latest.messages || []).filter(function (m) { return m.message_type !== 0 && m.created_at > seen; }).length);
      if (isOpen()) markRead();
    }).then(flushOutbox, function (err) {
      if (err.status === 404 || err.status === 401) { clearSession(); return; } // the session is gone
      fail(err);
    });
  }

  function identify(attrs) {
    var body = {};
    ["identifier", "identifier_hash", "name", "email", "phone_number"].forEach(function (k) { if (attrs[k]) body[k] = attrs[k]; });
    identity = null;
    return request("PATCH", contactPath(), body);
  }

  function clearSession() {
    if (cable && subscription) cable.unsubscribe(subscription);
    subscription = null;
    store = {};
    save();
    conversation = null;
    messages = {};
    ui.list.textContent = "";
    setUnread(0);
    showPrechat();
  }

  // -- realtime --------------------------------------------------------------------------------

  function connect() {
    if (subscription || !store.pubsub_token) return;
    if (!cable) {
      cable = new window.InboxGateCable(window.InboxGateCable.urlFor(BASE), {onStatus: function (s) {
        ui.root.setAttribute("data-connection", s);
        if (s === "connected") flushOutbox();
      }});
      setInterval(function () { if (subscription) cable.perform(subscription, "update_presence"); }, 20000);
    }
    subscription = cable.subscribe({channel: "RoomChannel", pubsub_token: store.pubsub_token}, {
      positions: store.positions || {},
      onPositions: function (positions) { store.positions = positions; save(); },
      onMessage: onEvent,
      onResync: function () { store.positions = {}; save(); restore(); }
    });
  }

  function onEvent(message) {
    var data = message.data || {};
    switch (message.event) {
      case "message.created":
      case "message.updated":
        if (!conversation && data.conversation_id) adoptConversation({id: data.conversation_id, status: "open"});
        if (conversation && data.conversation_id === conversation.id) {
          var fresh = !messages[data.id];
          upsert(data, true);
          if (fresh && data.message_type !== 0 && message.event === "message.created") arrived(data);
        }
        return;
      case "conversation.created":
        if (!conversation) adoptConversation(data);
        return;
      case "conversation.status_changed":
      case "conversation.updated":
        if (conversation && data.id === conversation.id) conversation.status = data.status;
        return;
      case "conversation.typing_on":
      case "conversation.typing_off":
        var user = data.user || {};
        if (data.is_private || user.type === "contact") return;
        if (conversation && data.conversation && data.conversation.id !== conversation.id) return;
        agentTyping(message.event === "conversation.typing_on", user.available_name || user.name);
    }
  }

  function arrived(data) {
    agentTyping(false);
    emit("message", data);
    if (isOpen() && !document.hidden) markRead();
    else setUnread(unread + 1);
  }

  function agentTyping(on, name) {
    clearTimeout(agentTypingTimer);
    ui.typing.hidden = !on;
    if (on) {
      ui.typing.textContent = (name || "Agent") + " is typing\u2026";
      agentTypingTimer = setTimeout(function () { ui.typing.hidden = true; }, 30000); // as Chatwoot's widget
    }
  }

  function markRead() {
    setUnread(0);
    if (conversation) request("POST", conversationPath() + "/update_last_seen").catch(function () {});
  }

  // -- messages --------------------------------------------------------------------------------

  /* Insert or replace a message; the optimistic copy (keyed by echo_id) becomes the real one. */
  function upsert(data, live) {
    var existing = messages[data.id] || (data.echo_id && messages[data.echo_id]);
    var el = render(data);
    if (existing && existing.el.parentNode) existing.el.parentNode.replaceChild(el, existing.el);
    else insertOrdered(el, data);
    if (data.echo_id) delete messages[data.echo_id];
    if (data.id) messages[data.id] = {data: data, el: el};
    if (live || !existing) ui.list.scrollTop = ui.list.scrollHeight;
  }

  function insertOrdered(el, data) {
    var nodes = ui.list.children;
    if (data.id) {
      for (var i = 0; i < nodes.length; i++) {
        var other = Number(nodes[i].getAttribute("data-id"));
        if (!other || other > data.id) { ui.list.insertBefore(el, nodes[i]); return; }
      }
    }
    ui.list.appendChild(el);
  }

  function render(m) {
    var mine = m.message_type === 0;
    var attrs = m.content_attributes || {};
    var el = h("div", {"class": "ig-message " + (mine ? "ig-mine" : "ig-theirs"), "data-id": m.id || null,
      "data-echo-id": m.echo_id || null, "data-type": m.content_type || "text"});
    if (!mine) el.appendChild(h("span", {"class": "ig-sender", text: m.sender ? (m.sender.available_name || m.sender.name) : inbox ? inbox.name : ""}));
    var bubble = h("div", {"class": "ig-bubble"});
    if (m.content) bubble.appendChild(h("p", {"class": "ig-text", text: m.content}));
    (m.attachments || []).forEach(function (a) {
      var shown = renderAttachment(a); // none for an attachment without a usable URL
      if (shown) bubble.appendChild(shown);
    });
    var kind = m.content_type;
    if (kind === "input_select") bubble.appendChild(renderSelect(m, attrs));
    else if (kind === "cards") bubble.appendChild(renderCards(attrs));
    else if (kind === "form") bubble.appendChild(renderForm(m, attrs));
    else if (kind === "article") bubble.appendChild(renderArticles(attrs));
    else if (kind === "input_csat") bubble.appendChild(renderCsat(m, attrs));
    el.appendChild(bubble);
    var meta = m.pending ? (m.failed ? "Not sent, retrying\u2026" : "Sending\u2026") :
      m.created_at ? new Date(m.created_at * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}) : "";
    el.appendChild(h("span", {"class": "ig-meta", text: meta}));
    return el;
  }

  function renderAttachment(a) {
    var url = a.preview || safeUrl(a.data_url); // preview: our own blob: URL of a file being sent
    if (!url) return null;
    if (a.file_type === "image") {
      return h("a", {href: url, target: "_blank", rel: "noopener noreferrer", "class": "ig-image"},
        [h("img", {src: safeUrl(a.thumb_url) || url, alt: "Image attachment", loading: "lazy"})]);
    }
    return h("a", {href: url, target: "_blank", rel: "noopener noreferrer", "class": "ig-file-link",
      text: "\uD83D\uDCC4 " + (a.file_name || "Download " + (a.extension || a.file_type || "file"))});
  }

  function submitted(attrs) {
    var values = attrs.submitted_values;
    return Array.isArray(values) ? values : values ? [values] : [];
  }

  function update(m, values) {
    return request("PATCH", conversationPath() + "/messages/" + m.id, {submitted_values: values}).then(function (res) {
      upsert(res, true);
    }, fail);
  }

  function renderSelect(m, attrs) {
    var chosen = submitted(attrs).map(function (v) { return v.value; });
    var box = h("div", {"class": "ig-options", role: "group", "aria-label": "Options"});
    (attrs.items || []).forEach(function (item) {
      box.appendChild(h("button", {type: "button", "class": "ig-option" + (chosen.indexOf(item.value) >= 0 ? " ig-chosen" : ""),
        disabled: chosen.length ? "" : null, text: item.title,
        on: {click: function () { update(m, [{title: item.title, value: item.value}]); }}}));
    });
    return box;
  }

  function renderCards(attrs) {
    var box = h("div", {"class": "ig-cards"});
    (attrs.items || []).forEach(function (card) {
      var media = safeUrl(card.media_url);
      var actions = (card.actions || []).map(function (action) {
        if (action.type === "link") {
          var href = safeUrl(action.uri);
          return href ? h("a", {href: href, target: "_blank", rel: "noopener noreferrer", "class": "ig-option", text: action.text}) : null;
        }
        return h("button", {type: "button", "class": "ig-option", text: action.text,
          on: {click: function () { queue(String(action.payload || action.text), []); }}});
      });
      box.appendChild(h("div", {"class": "ig-card"}, [
        media ? h("img", {src: media, alt: card.title || ""}) : null,
        h("strong", {text: card.title || ""}), h("p", {text: card.description || ""})
      ].concat(actions)));
    });
    return box;
  }

  function renderForm(m, attrs) {
    var done = submitted(attrs);
    var form = h("form", {"class": "ig-form"});
    (attrs.items || []).forEach(function (item) {
      var value = (done.filter(function (v) { return v.name === item.name; })[0] || {}).value;
      var field;
      if (item.type === "select") {
        field = h("select", {name: item.name}, (item.options || []).map(function (o) {
          return h("option", {value: o.value, text: o.label});
        }));
      } else if (item.type === "text_area" || item.type === "textarea") {
        field = h("textarea", {name: item.name, placeholder: item.placeholder || null});
      } else {
        field = h("input", {name: item.name, type: item.type === "email" ? "email" : "text", placeholder: item.placeholder || null});
      }
      if (value !== undefined) { field.value = value; field.disabled = true; }
      if (item.required) field.required = true;
      form.appendChild(h("label", {}, [h("span", {text: item.label || item.name}), field]));
    });
    if (!done.length) form.appendChild(h("button", {type: "submit", "class": "ig-primary", text: "Submit"}));
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      update(m, (attrs.items || []).map(function (item) {
        return {name: item.name, title: item.label || item.name, value: form.elements[item.name].value};
      }));
    });
    return form;
  }

  function renderArticles(attrs) {
    var list = h("ul", {"class": "ig-articles"});
    (attrs.items || []).forEach(function (item) {
      var href = safeUrl(item.link);
      list.appendChild(h("li", {}, [
        href ? h("a", {href: href, target: "_blank", rel: "noopener noreferrer", text: item.title}) : h("strong", {text: item.title}),
        h("p", {text: item.description || ""})
      ]));
    });
    return list;
  }

  function renderCsat(m, attrs) {
    var response = (submitted(attrs)[0] || {}).csat_survey_response || attrs.csat_survey_response;
    var type = attrs.display_type === "star" ? "star" : "emoji";
    var box = h("form", {"class": "ig-csat ig-csat-" + type, "aria-label": "Rate the conversation"});
    if (response && response.rating) {
      box.appendChild(h("p", {"class": "ig-csat-done", text: "Thank you! You rated " + response.rating + " of 5."}));
      return box;
    }
    var rating = 0;
    var buttons = RATINGS[type].map(function (face, i) {
      return h("button", {type: "button", "class": "ig-rate", "aria-pressed": "false", "aria-label": "Rating " + (i + 1) + " of 5",
        text: face, on: {click: function () {
          rating = i + 1;
          buttons.forEach(function (b, j) {
            b.setAttribute("aria-pressed", String(j === i));
            b.classList.toggle("ig-on", type === "star" ? j <= i : j === i);
          });
        }}});
    });
    box.appendChild(h("div", {"class": "ig-rates", role: "group", "aria-label": "Rating"}, buttons));
    var comment = h("textarea", {name: "feedback", rows: "2", placeholder: "Tell us more (optional)", "aria-label": "Comment"});
    box.appendChild(comment);
    box.appendChild(h("button", {type: "submit", "class": "ig-primary", text: "Submit rating"}));
    box.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!rating) { buttons[0].focus(); return; }
      update(m, {csat_survey_response: {rating: rating, feedback_message: comment.value}});
    });
    return box;
  }

  // -- sending ---------------------------------------------------------------------------------

  function onKeydown(e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendText(); }
  }

  function onInput() {
    if (!conversation) return;
    if (!typingOn) { typingOn = true; request("POST", conversationPath() + "/toggle_typing", {typing_status: "on"}).catch(function () {}); }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 3000);
  }

  function stopTyping() {
    clearTimeout(typingTimer);
    if (!typingOn || !conversation) return;
    typingOn = false;
    request("POST", conversationPath() + "/toggle_typing", {typing_status: "off"}).catch(function () {});
  }

  function sendText() {
    var text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = "";
    stopTyping();
    queue(text, []);
  }

  function sendFiles(files) {
    queue("", Array.prototype.slice.call(files));
    ui.file.value = "";
  }

  /* Show at once, then send; a message that could not be sent is retried with the same echo_id,
   * which the gateway deduplicates, so a retry after a lost answer never doubles it. */
  function queue(text, files) {
    var item = {echo_id: newEchoId(), content: text, created_at: Math.floor(Date.now() / 1000)};
    var optimistic = {echo_id: item.echo_id, content: text, message_type: 0, pending: true,
      attachments: files.map(function (f) {
        return {file_type: /^image\//.test(f.type) ? "image" : "file", file_name: f.name, preview: URL.createObjectURL(f)};
      })};
    messages[item.echo_id] = {data: optimistic, el: render(optimistic), files: files};
    ui.list.appendChild(messages[item.echo_id].el);
    ui.list.scrollTop = ui.list.scrollHeight;
    if (!files.length) { store.outbox = (store.outbox || []).concat([item]); save(); }
    else pendingFiles.push({echo_id: item.echo_id, content: text, files: files});
    flushOutbox();
  }

  var pendingFiles = [];
  var retryTimer = null;

  function flushOutbox() {
    if (sending) return;
    var item = pendingFiles[0] || (store.outbox || [])[0];
    if (!item) return;
    sending = true;
    ensureConversation().then(function () {
      if (!messages[item.echo_id]) { // restored from another page load
        var optimistic = {echo_id: item.echo_id, content: item.content, message_type: 0, pending: true};
        messages[item.echo_id] = {data: optimistic, el: render(optimistic)};
        ui.list.appendChild(messages[item.echo_id].el);
      }
      var body = {content: item.content, echo_id: item.echo_id};
      if (item.files) {
        body = new FormData();
        body.append("content", item.content);
        body.append("echo_id", item.echo_id);
        item.files.forEach(function (f) { body.append("attachments[]", f, f.name); });
      }
      return request("POST", conversationPath() + "/messages", body);
    }).then(function (message) {
      message.echo_id = item.echo_id;
      upsert(message, true);
      done(item);
    }, function (err) {
      sending = false;
      if (err.status && err.status >= 400 && err.status < 500 && err.status !== 429) {
        done(item); // refused for good (too large, invalid): say so, never retry forever
        var entry = messages[item.echo_id];
        if (entry) entry.el.querySelector(".ig-meta").textContent = "Not sent";
        fail(err);
        return;
      }
      var entry2 = messages[item.echo_id];
      if (entry2) entry2.el.querySelector(".ig-meta").textContent = "Not sent, retrying\u2026";
      clearTimeout(retryTimer);
      retryTimer = setTimeout(flushOutbox, 2000);
    });

    function done(sent) {
      sending = false;
      if (pendingFiles[0] === sent) pendingFiles.shift();
      else { store.outbox = (load().outbox || store.outbox || []).filter(function (o) { return o.echo_id !== sent.echo_id; }); save(); }
      flushOutbox();
    }
  }

  function fail(err) {
    emit("error", {message: String(err && err.message || err)});
  }

  // -- the public API --------------------------------------------------------------------------

  var api = {
    version: "1",
    open: function () {
      if (isOpen()) return;
      ui.panel.hidden = false;
      ui.launcher.setAttribute("aria-expanded", "true");
      ui.root.classList.add("ig-is-open");
      (ui.composer.hidden ? ui.prechat.querySelector("input") : ui.input).focus();
      markRead();
      ui.list.scrollTop = ui.list.scrollHeight;
      emit("open", {});
    },
    close: function () {
      if (!isOpen()) return;
      ui.panel.hidden = true;
      ui.launcher.setAttribute("aria-expanded", "false");
      ui.root.classList.remove("ig-is-open");
      emit("close", {});
    },
    toggle: function () { if (isOpen()) api.close(); else api.open(); },
    isOpen: function () { return isOpen(); },
    /* Identify the visitor; identifier_hash is HMAC-SHA256(inbox hmac_token, identifier) in hex,
     * computed by the site's backend. A different identifier starts a new contact session. */
    setUser: function (identifier, attrs) {
      var user = {identifier: String(identifier)};
      for (var k in attrs || {}) user[k] = attrs[k];
      if (store.source_id && store.identifier && store.identifier !== user.identifier) clearSession();
      if (store.source_id) return identify(user).then(function () { store.identifier = user.identifier; save(); }, fail);
      identity = user;
      showPrechat();
      return ensureContact().catch(fail);
    },
    reset: function () { clearSession(); },
    on: function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); },
    off: function (name, fn) { listeners[name] = (listeners[name] || []).filter(function (f) { return f !== fn; }); }
  };
  window.InboxGate = api;

  // A second tab shares the session: follow its changes (new contact, new conversation, reset).
  window.addEventListener("storage", function (e) {
    if (e.key !== KEY) return;
    var next = load();
    if (next.source_id !== store.source_id) {
      clearSession();
      store = next;
      restore();
    } else if (next.conversation_id && (!conversation || next.conversation_id !== conversation.id)) {
      store.conversation_id = next.conversation_id;
      restore();
    }
  });
  document.addEventListener("visibilitychange", function () { if (!document.hidden && isOpen() && unread) markRead(); });

  function start() {
    build();
    if (cfg.identifier) identity = cfg;
    var ready = window.InboxGateCable ? Promise.resolve() : new Promise(function (resolve, reject) {
      var tag = h("script", {src: STATIC + "cable.js"});
      tag.onload = resolve;
      tag.onerror = reject;
      document.head.appendChild(tag);
    });
    ready.then(function () { return request("GET", ""); }).then(function (info) {
      inbox = info;
      if (identity && store.identifier && store.identifier !== identity.identifier) clearSession();
      showInbox();
      return restore();
    }).then(function () {
      ui.root.setAttribute("data-ready", "true");
      if (cfg.open || script.hasAttribute("data-open")) api.open();
      emit("ready", {});
    }, fail);
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
