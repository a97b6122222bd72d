// The live page's audience chat: one WebSocket to /live/{slug}/chat (docs/ref/chat-protocol.md).
// Every text from the server is put in the page with textContent, never as HTML.
(function () {
  "use strict";
  var box = document.getElementById("chat");
  if (!box || !window.WebSocket) { return; }
  var d = box.dataset;
  // Error sentences by code: data-error-too-long is dataset.errorTooLong.
  function errorText(code) {
    var key = "error" + String(code).split("_").map(function (w) { return w.charAt(0).toUpperCase() + w.slice(1); }).join("");
    return d[key];
  }
  var list = document.getElementById("chat-messages");
  var status = document.getElementById("chat-status");
  var form = document.getElementById("chat-form");
  var text = document.getElementById("chat-text");
  var nickname = document.getElementById("chat-nickname");
  var moderation = document.getElementById("chat-moderation");
  text.placeholder = d.placeholder;
  nickname.placeholder = d.nickname;
  var socket = null, me = null, mode = null, retry = 1000, items = {};

  function say(message) { status.textContent = message || ""; }
  function send(frame) { if (socket && socket.readyState === 1) { socket.send(JSON.stringify(frame)); } }
  function button(label, onclick) {
    var b = document.createElement("button");
    b.type = "button"; b.textContent = label; b.addEventListener("click", onclick);
    return b;
  }

  function render(m) {
    var li = items[m.id] || document.createElement("li");
    li.textContent = "";
    li.className = m.origin + (m.question ? " question" : "");
    var author = document.createElement("span");
    author.className = "author"; author.textContent = m.author;
    li.appendChild(author);
    if (m.origin === "meeting") { var where = document.createElement("span"); where.className = "tag"; where.textContent = d.fromMeeting; li.appendChild(where); }
    if (m.question) { var q = document.createElement("span"); q.className = "tag"; q.textContent = d.question + (m.answered ? " · " + d.answered : ""); li.appendChild(q); }
    var body = document.createElement("span");
    body.className = "text"; body.textContent = m.text;
    li.appendChild(body);
    if (m.question && !m.answered) {
      li.appendChild(button(d.upvote + (m.votes ? " (" + m.votes + ")" : ""), function () { send({ type: "upvote", id: m.id }); }));
    }
    if (me && me.moderator) {
      li.appendChild(button(d.hide, function () { send({ type: "hide", id: m.id }); }));
      if (m.origin === "audience") { li.appendChild(button(d.mute, function () { send({ type: "mute", author: m.author_key }); })); }
      if (m.question && !m.answered) { li.appendChild(button(d.markAnswered, function () { send({ type: "answered", id: m.id }); })); }
    }
    if (!items[m.id]) {
      items[m.id] = li;
      var atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
      list.appendChild(li);
      while (list.children.length > 300) { var first = list.firstChild; delete items[first.dataset.id]; list.removeChild(first); }
      if (atBottom) { list.scrollTop = list.scrollHeight; }
    }
    li.dataset.id = m.id;
    li.message = m;
  }

  function showMode() {
    if (!mode || !me) { return; }
    var canWrite = me.can_write && (mode.enabled || me.moderator);
    form.hidden = !canWrite;
    nickname.hidden = !(canWrite && !me.name);
    nickname.required = !nickname.hidden;
    if (!me.can_write) { say(d.readOnly); }
    else if (!mode.enabled && !me.moderator) { say(d.off); }
    else if (mode.slow_seconds > 0) { say(d.slow.replace("{n}", mode.slow_seconds)); }
    else { say(""); }
    if (!me.moderator) { moderation.hidden = true; return; }
    moderation.hidden = false;
    moderation.textContent = "";
    var title = document.createElement("strong"); title.textContent = d.moderation; moderation.appendChild(title);
    function toggle(label, checked, frame) {
      var l = document.createElement("label"); var c = document.createElement("input");
      c.type = "checkbox"; c.checked = checked;
      c.addEventListener("change", function () { send(frame(c.checked)); });
      l.appendChild(c); l.appendChild(document.createTextNode(" " + label)); moderation.appendChild(l);
    }
    toggle(d.chatOn, mode.enabled, function (on) { return { type: "enable", enabled: on }; });
    toggle(d.questions, mode.questions, function (on) { return { type: "question_mode", enabled: on }; });
    var slow = document.createElement("select");
    [0, 5, 10, 30, 60].forEach(function (s) { var o = document.createElement("option"); o.value = s; o.textContent = s ? s + " s" : "—"; o.selected = s === mode.slow_seconds; slow.appendChild(o); });
    slow.addEventListener("change", function () { send({ type: "slow_mode", seconds: Number(slow.value) }); });
    moderation.appendChild(slow);
  }

  function handle(e) {
    switch (e.type) {
      case "welcome": me = e; mode = e.mode; list.textContent = ""; items = {}; showMode(); break;
      case "history": e.messages.forEach(render); break;
      case "message": render(e.message); break;
      case "question": var li = items[e.id]; if (li && li.message) { li.message.votes = e.votes; li.message.answered = e.answered; render(li.message); } break;
      case "hidden": if (items[e.id]) { list.removeChild(items[e.id]); delete items[e.id]; } break;
      case "muted": if (me && me.key === e.author_key) { say(d.muted); } break;
      case "unmuted": if (me && me.key === e.author_key) { showMode(); } break;
      case "mode": mode = e.mode; showMode(); break;
      case "viewers":
        // The chat counts viewers on every instance; the page's own count is this instance's.
        var viewers = document.getElementById("live-viewers");
        if (viewers) { viewers.dataset.fromChat = "1"; viewers.textContent = viewers.dataset.label.replace("{n}", e.count); }
        break;
      case "status": if (e.status === "ended") { form.hidden = true; say(errorText("ended")); } break;
      case "error": say(errorText(e.code) || e.reason); break;
    }
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/live/" + encodeURIComponent(d.slug) + "/chat");
    socket.onopen = function () { retry = 1000; };
    // A frame carries one event per line (several under load).
    socket.onmessage = function (m) {
      String(m.data).split("\n").forEach(function (line) {
        try { handle(JSON.parse(line)); } catch (err) { /* an event this page does not know */ }
      });
    };
    socket.onclose = function () {
      form.hidden = true; say(d.reconnecting);
      setTimeout(connect, retry); retry = Math.min(retry * 2, 30000);
    };
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var frame = { type: "message", text: text.value };
    if (!nickname.hidden) { frame.nickname = nickname.value; }
    send(frame);
    text.value = "";
    text.focus();
  });
  text.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
  });
  connect();
})();
