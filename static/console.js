/* inboxgate agent console: sign in with an access token, see conversations with unread counts,
 * answer, write private notes, resolve (which sends the CSAT survey) and read the ratings.
 * Plain JavaScript on the agent API and /cable; text only ever goes through textContent. */
(function () {
  "use strict";
  var BASE = location.origin;
  var TOKEN_KEY = "inboxgate:console:token"; // sessionStorage: the credential dies with the tab
  var $ = function (id) { return document.getElementById(id); };

  var token = null;
  var profile = null;
  var accountId = null;
  var cable = null;
  var positions = {};
  var conversations = {}; // display id -> conversation (list shape)
  var current = null; // display id of the open conversation
  var shown = {}; // message id -> element, for the open conversation
  var ratings = {}; // display id -> csat_survey_response
  var typingTimer = null;

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
  function safeUrl(value) {
    try {
      var url = new URL(value, BASE);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (err) { return null; }
  }
  function api(method, path, body) {
    var init = {method: method, headers: {api_access_token: token}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(BASE + "/api/v1" + path, init).then(function (res) {
      if (!res.ok) { var err = new Error("HTTP " + res.status); err.status = res.status; throw err; }
      return res.text().then(function (t) { return t ? JSON.parse(t) : null; });
    });
  }
  function account(path) { return "/accounts/" + accountId + path; }

  // -- sign in ---------------------------------------------------------------------------------

  function signIn(candidate) {
    token = candidate;
    return api("GET", "/profile").then(function (me) {
      profile = me;
      accountId = me.account_id || (me.accounts[0] || {}).id;
      sessionStorage.setItem(TOKEN_KEY, token);
      $("signin").hidden = true;
      $("app").hidden = false;
      $("who").textContent = me.available_name || me.name;
      connect();
      return loadConversations();
    }, function (err) {
      token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      $("signin-error").textContent = err.status === 401 ? "That access token is not valid." : "Could not sign in (" + err.message + ").";
    });
  }

  $("signin").addEventListener("submit", function (e) {
    e.preventDefault();
    signIn($("token").value.trim());
  });
  $("signout").addEventListener("click", function () {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });

  // -- realtime --------------------------------------------------------------------------------

  function connect() {
    cable = new window.InboxGateCable(window.InboxGateCable.urlFor(BASE), {onStatus: function (s) {
      document.body.setAttribute("data-connection", s);
      $("connection").textContent = s === "connected" ? "Live" : s === "connecting" ? "Connecting\u2026" : "Offline, reconnecting\u2026";
    }});
    cable.subscribe({channel: "RoomChannel", pubsub_token: profile.pubsub_token, account_id: accountId, user_id: profile.id}, {
      positions: positions,
      onMessage: onEvent,
      onResync: function () { loadConversations().then(function () { if (current) openConversation(current); }); }
    });
  }

  function onEvent(message) {
    var data = message.data || {};
    switch (message.event) {
      case "message.created":
      case "message.updated":
        var id = data.conversation_id;
        noteRating(id, data);
        if (id === current) {
          show(data);
          if (message.event === "message.created" && data.message_type === 0) markRead(id);
        }
        var conv = conversations[id];
        if (!conv) { fetchConversation(id); return; }
        if (message.event === "message.created" && !data.private && data.message_type !== 2) {
          conv.last_non_activity_message = data;
          conv.last_activity_at = data.created_at;
          if (id !== current && data.conversation) conv.unread_count = data.conversation.unread_count;
        }
        renderList();
        return;
      case "conversation.created":
      case "conversation.status_changed":
      case "conversation.updated":
        var known = conversations[data.id];
        if (!known) { fetchConversation(data.id); return; }
        known.status = data.status;
        renderList();
        if (data.id === current) renderHead();
        return;
      case "conversation.typing_on":
      case "conversation.typing_off":
        var conversation = data.conversation || {};
        if (conversation.id !== current || (data.user || {}).type !== "contact") return;
        clearTimeout(typingTimer);
        $("typing").hidden = message.event === "conversation.typing_off";
        $("typing").textContent = (data.user.name || "The customer") + " is typing\u2026";
        typingTimer = setTimeout(function () { $("typing").hidden = true; }, 30000);
    }
  }

  // -- the conversation list -------------------------------------------------------------------

  function loadConversations() {
    return api("GET", account("/conversations?status=all")).then(function (body) {
      body.data.payload.forEach(function (c) {
        conversations[c.id] = c;
        noteRating(c.id, c.last_non_activity_message);
      });
      renderList();
    });
  }

  function fetchConversation(id) {
    return api("GET", account("/conversations/" + id)).then(function (c) {
      conversations[c.id] = c;
      (c.messages || []).forEach(function (m) { noteRating(c.id, m); });
      renderList();
    }, function () {});
  }

  function noteRating(conversationId, m) {
    if (!m || m.content_type !== "input_csat") return;
    var values = (m.content_attributes || {}).submitted_values || {};
    if (Array.isArray(values)) values = values[0] || {};
    ratings[conversationId] = values.csat_survey_response || ratings[conversationId] || "pending";
  }

  function renderList() {
    var list = $("conversations");
    list.textContent = "";
    Object.keys(conversations).map(function (k) { return conversations[k]; }).sort(function (a, b) {
      return (b.last_activity_at || 0) - (a.last_activity_at || 0) || b.id - a.id;
    }).forEach(function (c) {
      var sender = (c.meta || {}).sender || {};
      var last = c.last_non_activity_message || {};
      var rating = ratings[c.id];
      var unread = c.id === current ? 0 : c.unread_count || 0;
      list.appendChild(h("li", {}, [h("button", {type: "button", "class": "conversation" + (c.id === current ? " active" : ""),
        "data-id": c.id, "aria-current": c.id === current ? "true" : null,
        on: {click: function () { openConversation(c.id); }}}, [
        h("span", {"class": "row"}, [
          h("strong", {text: sender.name || "Contact #" + c.id}),
          unread ? h("span", {"class": "unread", "aria-label": unread + " unread", text: String(unread)}) : null
        ]),
        h("span", {"class": "preview", text: last.content || (last.attachments ? "Attachment" : "")}),
        h("span", {"class": "row small"}, [
          h("span", {"class": "status status-" + c.status, text: c.status}),
          rating && rating !== "pending" ? h("span", {"class": "rating", text: "\u2605 " + rating.rating + "/5"}) : null
        ])
      ])]));
    });
  }

  // -- one conversation ------------------------------------------------------------------------

  function openConversation(id) {
    current = id;
    shown = {};
    $("messages").textContent = "";
    $("typing").hidden = true;
    $("empty").hidden = true;
    $("detail").hidden = false;
    renderHead();
    renderList();
    return api("GET", account("/conversations/" + id + "/messages")).then(function (body) {
      if (current !== id) return;
      body.payload.forEach(function (m) { noteRating(id, m); show(m); });
      markRead(id);
      renderList();
      $("reply-text").focus();
    });
  }

  function renderHead() {
    var c = conversations[current];
    if (!c) return;
    var sender = (c.meta || {}).sender || {};
    $("contact-name").textContent = sender.name || "Contact";
    $("conversation-meta").textContent = "#" + c.id + " \u00B7 " + c.status + (sender.email ? " \u00B7 " + sender.email : "");
    $("resolve").textContent = c.status === "resolved" ? "Reopen" : "Resolve";
  }

  function markRead(id) {
    if (conversations[id]) conversations[id].unread_count = 0;
    api("POST", account("/conversations/" + id + "/update_last_seen")).catch(function () {});
  }

  function show(m) {
    var el = render(m);
    var old = shown[m.id];
    var box = $("messages");
    if (old) box.replaceChild(el, old);
    else box.appendChild(el);
    shown[m.id] = el;
    box.scrollTop = box.scrollHeight;
  }

  function render(m) {
    var kind = m.message_type === 2 ? "activity" : m.message_type === 0 ? "incoming" : "outgoing";
    var el = h("div", {"class": "message " + kind + (m.private ? " private" : ""), "data-id": m.id, "data-type": m.content_type});
    if (kind === "activity") { el.textContent = m.content || ""; return el; }
    var who = m.private ? "Private note" : m.sender ? (m.sender.available_name || m.sender.name) : "Automated";
    el.appendChild(h("span", {"class": "who-line", text: who}));
    if (m.content) el.appendChild(h("p", {"class": "text", text: m.content}));
    (m.attachments || []).forEach(function (a) {
      var url = safeUrl(a.data_url);
      if (!url) return;
      el.appendChild(a.file_type === "image" ?
        h("a", {href: url, target: "_blank", rel: "noopener noreferrer"}, [h("img", {src: url, alt: "Image attachment"})]) :
        h("a", {href: url, target: "_blank", rel: "noopener noreferrer", text: "Attachment (" + a.file_type + ")"}));
    });
    var attrs = m.content_attributes || {};
    if (m.content_type === "input_csat") {
      var values = attrs.submitted_values || {};
      if (Array.isArray(values)) values = values[0] || {};
      var response = values.csat_survey_response;
      el.appendChild(h("p", {"class": "csat", text: response && response.rating ?
        "Rating: " + response.rating + "/5" + (response.feedback_message ? " \u2014 \u201C" + response.feedback_message + "\u201D" : "") :
        "CSAT survey sent, waiting for a rating"}));
    } else if (attrs.submitted_values) {
      var list = Array.isArray(attrs.submitted_values) ? attrs.submitted_values : [attrs.submitted_values];
      el.appendChild(h("p", {"class": "submitted", text: "Answered: " + list.map(function (v) {
        return (v.title || v.name || "") + (v.value !== undefined && v.value !== v.title ? " = " + v.value : "");
      }).join(", ")}));
    }
    el.appendChild(h("span", {"class": "time", text: new Date(m.created_at * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"})}));
    return el;
  }

  function sendReply() {
    var text = $("reply-text").value.trim();
    if (!text || !current) return;
    var id = current;
    var note = $("private").checked;
    $("reply-text").value = "";
    api("POST", account("/conversations/" + id + "/messages"), {content: text, private: note,
      echo_id: "console-" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8)}).then(function (m) {
      if (current === id) show(m);
    }, function (err) {
      $("reply-text").value = text; // keep what the agent wrote
      alert("Could not send: " + err.message);
    });
  }

  $("reply").addEventListener("submit", function (e) { e.preventDefault(); sendReply(); });
  $("reply-text").addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendReply(); }
  });
  $("resolve").addEventListener("click", function () {
    var c = conversations[current];
    if (!c) return;
    var next = c.status === "resolved" ? "open" : "resolved";
    api("POST", account("/conversations/" + c.id + "/toggle_status"), {status: next}).then(function (body) {
      c.status = body.payload.current_status;
      renderHead();
      renderList();
    });
  });

  var saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
  else $("token").focus();
})();
