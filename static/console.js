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
  var conversations = {}; // display id -> conversation (list shape), every one seen
  var listed = {}; // display id -> true: the conversations the current view holds
  var view = {status: "all", query: "", page: 0, more: false, loading: null, error: "", seq: 0};
  var current = null; // display id of the open conversation
  var shown = {}; // message id -> element, for the open conversation
  var older = {more: false, loading: false}; // older messages of the open conversation
  var searchTimer = null;
  var PAGE = 25; // the agent API's conversations per page
  var CONTACTS_PAGE = 15; // contacts per page of the contacts search
  var MESSAGES_PAGE = 20; // messages per page of the agent API (latest 20, 20 before an id)
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
  /* Only a non-empty http(s) URL: a missing or empty one would resolve to the gateway's own
   * address (new URL(undefined, BASE) is BASE + "/undefined"), a broken image or link. */
  function safeUrl(value) {
    if (typeof value !== "string" || !value.trim()) return null;
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
      return resetList();
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
      onResync: function () { resetList().then(function () { if (current) openConversation(current); }); }
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
  /* One view at a time: every conversation of a status, a page of 25 at a time (newest activity
   * first), or the conversations of the contacts whose name or e-mail match a search, a page of
   * contacts (the agent API's contacts search) at a time. */

  function resetList() {
    view.seq += 1;
    view.page = 0;
    view.more = false;
    view.loading = null;
    view.error = "";
    listed = {};
    renderList();
    return loadMore();
  }

  function loadMore() {
    if (view.loading) return view.loading;
    var seq = view.seq;
    var page = view.page + 1;
    var fetched = view.query ? searchPage(view.query, page) : listPage(view.status, page);
    view.error = "";
    view.loading = fetched.then(function (found) {
      if (seq !== view.seq) return; // the agent changed the search or filter meanwhile
      view.page = page;
      view.more = found.more;
      found.conversations.forEach(function (c) { remember(c); listed[c.id] = true; });
      if (!view.query) { // what was heard of live meanwhile joins once it sorts among the pages
        Object.keys(conversations).forEach(function (k) {
          if (!listed[k] && withinLoaded(conversations[k])) listed[k] = true;
        });
      }
      view.loading = null;
      renderList();
    }, function (err) {
      if (seq !== view.seq) return;
      view.loading = null;
      view.error = "Could not load conversations (" + err.message + ").";
      renderList();
    });
    renderList();
    return view.loading;
  }

  function listPage(status, page) {
    return api("GET", account("/conversations?status=" + encodeURIComponent(status) + "&page=" + page)).then(function (body) {
      var found = body.data.payload;
      return {conversations: found, more: found.length >= PAGE && page * PAGE < body.data.meta.all_count};
    });
  }

  function searchPage(query, page) {
    var path = "/contacts/search?include_contact_inboxes=false&q=" + encodeURIComponent(query) + "&page=" + page;
    return api("GET", account(path)).then(function (body) {
      return Promise.all(body.payload.map(function (contact) {
        return api("GET", account("/contacts/" + contact.id + "/conversations")).then(function (r) { return r.payload; });
      })).then(function (lists) {
        return {conversations: [].concat.apply([], lists),
          more: body.payload.length >= CONTACTS_PAGE && page * CONTACTS_PAGE < (body.meta.count || 0)};
      });
    });
  }

  function remember(c) {
    conversations[c.id] = c;
    noteRating(c.id, c.last_non_activity_message);
    (c.messages || []).forEach(function (m) { noteRating(c.id, m); });
  }

  function fetchConversation(id) {
    return api("GET", account("/conversations/" + id)).then(function (c) {
      remember(c);
      if (!view.query && withinLoaded(c)) listed[c.id] = true; // searches show their results only
      renderList();
    }, function () {});
  }

  function newer(a, b) {
    return (a.last_activity_at || 0) - (b.last_activity_at || 0) || a.id - b.id;
  }

  /* A conversation heard of live joins the list when it sorts among the pages loaded so far;
   * one older than them (an event replayed on connect) waits for "Load more", where it is.
   * Before the first page nothing is known to sort against: it waits for that page. */
  function withinLoaded(c) {
    if (view.page === 0) return false; // the first page decides (events replayed on connect can come first)
    if (!view.more) return true;
    var last = null;
    Object.keys(listed).forEach(function (k) {
      var other = conversations[k];
      if (other && (!last || newer(other, last) < 0)) last = other;
    });
    return !last || newer(c, last) >= 0;
  }

  function noteRating(conversationId, m) {
    if (!m || m.content_type !== "input_csat") return;
    var values = (m.content_attributes || {}).submitted_values || {};
    if (Array.isArray(values)) values = values[0] || {};
    ratings[conversationId] = values.csat_survey_response || ratings[conversationId] || "pending";
  }

  function visible(c) {
    return listed[c.id] && (view.status === "all" || c.status === view.status);
  }

  function renderList() {
    var list = $("conversations");
    list.textContent = "";
    var items = Object.keys(conversations).map(function (k) { return conversations[k]; }).filter(visible);
    items.sort(function (a, b) { return newer(b, a); }).forEach(function (c) {
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
        sender.email ? h("span", {"class": "email", text: sender.email}) : null,
        h("span", {"class": "preview", text: last.content || (last.attachments ? "Attachment" : "")}),
        h("span", {"class": "row small"}, [
          h("span", {"class": "status status-" + c.status, text: c.status}),
          rating && rating !== "pending" ? h("span", {"class": "rating", text: "\u2605 " + rating.rating + "/5"}) : null
        ])
      ])]));
    });
    list.setAttribute("aria-busy", view.loading ? "true" : "false");
    $("more-conversations").hidden = !view.more || !!view.loading;
    $("list-note").textContent = view.loading ? "Loading\u2026" : view.error || (items.length ? "" :
      view.query ? "No conversation of a contact matching \u201C" + view.query + "\u201D." : "No conversations.");
  }

  function applyFilters() {
    clearTimeout(searchTimer);
    var query = $("search").value.trim();
    var status = $("status-filter").value;
    if (query === view.query && status === view.status) return;
    view.query = query;
    view.status = status;
    resetList();
  }

  $("filters").addEventListener("submit", function (e) { e.preventDefault(); applyFilters(); });
  $("search").addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(applyFilters, 300);
  });
  $("status-filter").addEventListener("change", applyFilters);
  $("more-conversations").addEventListener("click", function () { loadMore(); });

  // -- one conversation ------------------------------------------------------------------------

  function openConversation(id) {
    current = id;
    shown = {};
    older = {more: false, loading: false};
    $("messages").textContent = "";
    $("older").hidden = true;
    $("typing").hidden = true;
    $("empty").hidden = true;
    $("detail").hidden = false;
    renderHead();
    renderList();
    return api("GET", account("/conversations/" + id + "/messages")).then(function (body) {
      if (current !== id) return;
      older.more = body.payload.length >= MESSAGES_PAGE;
      $("older").hidden = !older.more; // before the messages, which scroll to the newest
      body.payload.forEach(function (m) { noteRating(id, m); show(m); });
      markRead(id);
      renderList();
      $("reply-text").focus();
    });
  }

  /* The 20 messages before the oldest one shown (the agent API's ``before``), kept in view: the
   * scroll position stays on the message the agent was reading. */
  function loadOlder() {
    var ids = Object.keys(shown).map(Number);
    if (!current || older.loading || !older.more || !ids.length) return;
    var id = current;
    older.loading = true;
    $("older").disabled = true;
    api("GET", account("/conversations/" + id + "/messages?before=" + Math.min.apply(null, ids))).then(function (body) {
      if (current !== id) return;
      var scroller = $("scroller");
      var fromBottom = scroller.scrollHeight - scroller.scrollTop;
      body.payload.forEach(function (m) { noteRating(id, m); show(m, true); });
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
      older = {more: body.payload.length >= MESSAGES_PAGE, loading: false};
      $("older").hidden = !older.more;
      $("older").disabled = false;
    }, function () {
      older.loading = false;
      $("older").disabled = false;
    });
  }

  $("older").addEventListener("click", loadOlder);
  $("scroller").addEventListener("scroll", function () {
    if ($("scroller").scrollTop < 40) loadOlder();
  });

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

  /* In id order (older pages arrive after newer messages); ``keepScroll`` for an older page,
   * which must not jump to the newest message. */
  function show(m, keepScroll) {
    var el = render(m);
    var old = shown[m.id];
    var box = $("messages");
    if (old) box.replaceChild(el, old);
    else {
      var next = null;
      for (var i = 0; i < box.children.length && !next; i++) {
        if (Number(box.children[i].getAttribute("data-id")) > m.id) next = box.children[i];
      }
      box.insertBefore(el, next);
    }
    shown[m.id] = el;
    if (!keepScroll) $("scroller").scrollTop = $("scroller").scrollHeight;
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
        h("a", {href: url, target: "_blank", rel: "noopener noreferrer", text: "Attachment (" + (a.file_type || "file") + ")"}));
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
