// owl's chat page: talks to this server's OpenAI API (/v1/models, /v1/chat/completions) and
// keeps conversations, settings and the API key in localStorage. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const store = {
  get(k, d) {
    try { const v = localStorage.getItem("owl." + k); return v === null ? d : JSON.parse(v); } catch { return d; }
  },
  set(k, v) {
    try { localStorage.setItem("owl." + k, JSON.stringify(v)); } catch (e) { console.warn("owl: not saved", e); }
  },
};

// ---- Markdown: escape first, then a small subset; nothing the model writes becomes markup.
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
  .replace(/"/g, "&quot;").replace(/'/g, "&#39;");

function emphasis(s) {
  s = s.replace(/\*\*(?=\S)([^*]*?\S)\*\*|__(?=\S)([^_]*?\S)__/g, (_, a, b) => "<strong>" + (a || b) + "</strong>");
  return s.replace(/\*(?=\S)([^*]*?\S)\*|(^|[^\w])_(?=\S)([^_]*?\S)_(?!\w)/g,
    (_, a, pre, b) => a !== undefined ? "<em>" + a + "</em>" : pre + "<em>" + b + "</em>");
}

// Code spans and links become placeholders first, so emphasis never reaches into them.
function inline(s) {
  const held = [];
  const hold = (html) => { held.push(html); return "\u0000" + (held.length - 1) + "\u0000"; };
  s = s.replace(/`([^`\n]+)`/g, (_, c) => hold("<code>" + c + "</code>"));
  s = s.replace(/\[([^\]\n]+)\]\(((?:https?:\/\/|mailto:)[^\s()]+)\)/g,
    (_, t, u) => hold('<a href="' + u + '" target="_blank" rel="noopener noreferrer">' + emphasis(t) + "</a>"));
  return emphasis(s).replace(/\u0000(\d+)\u0000/g, (_, i) => held[+i]);
}

function markdown(src) {
  const lines = esc(src.replace(/\u0000/g, "")).split("\n");
  const out = [];
  let para = [], list = null;
  const flushPara = () => { if (para.length) out.push("<p>" + inline(para.join("\n")).replace(/\n/g, "<br>") + "</p>"); para = []; };
  const flushList = () => { if (list) out.push("<" + list.tag + ">" + list.items.map((i) => "<li>" + inline(i) + "</li>").join("") + "</" + list.tag + ">"); list = null; };
  const flush = () => { flushPara(); flushList(); };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^\s*(```|~~~)\s*([\w+#.-]*)/);
    if (fence) {
      flush();
      const body = [];
      for (i++; i < lines.length && !lines[i].trim().startsWith(fence[1]); i++) body.push(lines[i]);
      const lang = fence[2];
      out.push('<div class="code"><div class="code-head"><span class="lang">' + (lang || "code") +
        '</span><button type="button" class="copy">Copy</button></div><pre><code' +
        (lang ? ' class="language-' + lang + '"' : "") + ">" + body.join("\n") + "</code></pre></div>");
      continue;
    }
    let m;
    if ((m = line.match(/^(#{1,6})\s+(.*)$/))) { flush(); out.push("<h" + m[1].length + ">" + inline(m[2]) + "</h" + m[1].length + ">"); continue; }
    if ((m = line.match(/^\s*(?:([-*+])|(\d+)[.)])\s+(.*)$/))) {
      const tag = m[1] ? "ul" : "ol";
      flushPara();
      if (list && list.tag !== tag) flushList();
      if (!list) list = { tag, items: [] };
      list.items.push(m[3]);
      continue;
    }
    if (!line.trim()) { flush(); continue; }
    if (list && /^\s+\S/.test(line)) { list.items[list.items.length - 1] += " " + line.trim(); continue; }
    flushList();
    para.push(line);
  }
  flush();
  return out.join("\n");
}
window.owlMarkdown = markdown;

// ---- State
let convos = store.get("convos", []);
let current = store.get("current", null);
let settings = Object.assign({ system: "", temperature: 0.7, maxTokens: "", model: "" }, store.get("settings", {}));
let controller = null;

const convo = () => convos.find((c) => c.id === current);
const save = () => { store.set("convos", convos); store.set("current", current); };
const authHeaders = () => {
  const key = store.get("key", "");
  return key ? { Authorization: "Bearer " + key } : {};
};

// ---- Rendering
function renderSidebar() {
  const ul = $("convos");
  ul.textContent = "";
  for (const c of [...convos].sort((a, b) => b.updated - a.updated)) {
    const li = document.createElement("li");
    if (c.id === current) li.className = "active";
    const open = document.createElement("button");
    open.type = "button"; open.className = "open"; open.textContent = c.title || "New chat";
    open.addEventListener("click", () => switchTo(c.id));
    const del = document.createElement("button");
    del.type = "button"; del.className = "delete"; del.textContent = "×";
    del.setAttribute("aria-label", "Delete conversation " + (c.title || ""));
    del.addEventListener("click", () => remove(c.id));
    li.append(open, del);
    ul.append(li);
  }
}

function messageEl(msg) {
  const el = document.createElement("div");
  el.className = "msg " + msg.role;
  el.dataset.role = msg.role;
  updateEl(el, msg);
  return el;
}

function updateEl(el, msg) {
  if (msg.role === "user") { el.textContent = msg.content; return; }
  let details = el.querySelector("details.reasoning");
  if (msg.reasoning && !details) {
    details = document.createElement("details");
    details.className = "reasoning";
    details.innerHTML = "<summary>Reasoning</summary><div class=\"md\"></div>";
    el.prepend(details);
  }
  if (details) details.querySelector(".md").innerHTML = markdown(msg.reasoning);
  let body = el.querySelector(".body");
  if (!body) { body = document.createElement("div"); body.className = "body md"; el.append(body); }
  body.innerHTML = markdown(msg.content);
  let note = el.querySelector(".note");
  const text = msg.error ? msg.error : msg.stopped ? "stopped" : msg.usage || "";
  if (text && !note) { note = document.createElement("div"); el.append(note); }
  if (note) {
    note.className = "note" + (msg.error ? " error" : "");
    note.textContent = text;
    if (msg.error) note.setAttribute("role", "alert");
  }
}

function renderLog() {
  const log = $("log");
  log.textContent = "";
  const c = convo();
  if (!c) {
    const empty = document.createElement("p");
    empty.className = "empty"; empty.textContent = "Start a conversation.";
    log.append(empty);
    return;
  }
  for (const m of c.messages) log.append(messageEl(m));
  log.scrollTop = log.scrollHeight;
}

function render() { renderSidebar(); renderLog(); }

function setStreaming(on) {
  $("send").hidden = on;
  $("stop").hidden = !on;
}

// ---- Conversations
function switchTo(id) {
  if (controller) controller.abort();
  current = id; save(); render();
  $("message").focus();
}

function remove(id) {
  if (controller && id === current) controller.abort();
  convos = convos.filter((c) => c.id !== id);
  if (current === id) current = null;
  save(); render();
}

// ---- Models and the API key
function askForKey(error) {
  $("key-form").hidden = false;
  $("key-error").textContent = error || "";
  $("key").focus();
}

async function loadModels() {
  let resp;
  try {
    resp = await fetch("/v1/models", { headers: authHeaders() });
  } catch (e) {
    showBanner("Cannot reach the server: " + e.message);
    return;
  }
  if (resp.status === 401) {
    askForKey(store.get("key", "") ? "That key was refused: " + (await errorText(resp)) : "");
    return;
  }
  if (!resp.ok) { showBanner(await errorText(resp)); return; }
  $("key-form").hidden = true;
  const list = (await resp.json()).data || [];
  const select = $("model");
  select.textContent = "";
  for (const m of list) {
    const o = document.createElement("option");
    o.value = o.textContent = m.id;
    select.append(o);
  }
  if (list.some((m) => m.id === settings.model)) select.value = settings.model;
}

function showBanner(text) {
  const p = document.createElement("p");
  p.className = "note error"; p.setAttribute("role", "alert"); p.textContent = text;
  $("log").append(p);
}

async function errorText(resp) {
  const body = await resp.text().catch(() => "");
  try { return JSON.parse(body).error.message || body; } catch { return body || resp.status + " " + resp.statusText; }
}

// ---- Sending and streaming
function request(c) {
  const messages = [];
  if (settings.system.trim()) messages.push({ role: "system", content: settings.system });
  for (const m of c.messages) {
    if (m.role === "user" || (m.role === "assistant" && m.content)) messages.push({ role: m.role, content: m.content });
  }
  const body = { model: $("model").value, messages, stream: true, stream_options: { include_usage: true } };
  const t = parseFloat(settings.temperature);
  if (Number.isFinite(t)) body.temperature = t;
  const n = parseInt(settings.maxTokens, 10);
  if (Number.isFinite(n) && n > 0) body.max_tokens = n;
  return body;
}

async function send() {
  const box = $("message");
  const text = box.value;
  if (!text.trim() || controller) return;
  let c = convo();
  if (!c) {
    c = { id: Date.now().toString(36) + Math.random().toString(36).slice(2, 6), title: "", messages: [], updated: 0 };
    convos.push(c); current = c.id;
  }
  if (!c.title) c.title = text.trim().split("\n")[0].slice(0, 48);
  c.updated = Date.now();
  c.messages.push({ role: "user", content: text });
  const reply = { role: "assistant", content: "", reasoning: "" };
  const body = request(c);
  c.messages.push(reply);
  box.value = ""; autosize();
  save(); render();
  const el = $("log").lastElementChild;
  el.setAttribute("aria-busy", "true");
  controller = new AbortController();
  setStreaming(true);
  try {
    await stream(body, reply, el, controller.signal);
  } catch (e) {
    if (e.name === "AbortError") reply.stopped = true;
    else reply.error = e.message;
  } finally {
    controller = null;
    setStreaming(false);
    el.removeAttribute("aria-busy");
    updateEl(el, reply);
    save();
  }
}

async function stream(body, reply, el, signal) {
  const resp = await fetch("/v1/chat/completions", {
    method: "POST", signal,
    headers: Object.assign({ "Content-Type": "application/json" }, authHeaders()),
    body: JSON.stringify(body),
  });
  if (!resp.ok) {
    const msg = await errorText(resp);
    if (resp.status === 401) askForKey("That key was refused: " + msg);
    throw new Error(msg);
  }
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  const log = $("log");
  let buf = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") return;
      let chunk;
      try { chunk = JSON.parse(data); } catch { continue; }
      if (chunk.error) throw new Error(chunk.error.message || "the server reported an error");
      const delta = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta) || {};
      if (delta.reasoning_content) reply.reasoning += delta.reasoning_content;
      if (delta.content) reply.content += delta.content;
      if (chunk.usage) reply.usage = chunk.usage.prompt_tokens + " prompt tokens, " + chunk.usage.completion_tokens + " generated";
      const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      updateEl(el, reply);
      if (atEnd) log.scrollTop = log.scrollHeight;
    }
  }
}

// ---- Wiring
function autosize() {
  const box = $("message");
  box.style.height = "auto";
  box.style.height = Math.min(box.scrollHeight, 240) + "px";
}

function init() {
  $("system").value = settings.system;
  $("temperature").value = settings.temperature;
  $("max-tokens").value = settings.maxTokens;
  const saveSettings = () => {
    settings = { system: $("system").value, temperature: $("temperature").value, maxTokens: $("max-tokens").value, model: $("model").value };
    store.set("settings", settings);
  };
  for (const id of ["system", "temperature", "max-tokens", "model"]) {
    $(id).addEventListener("input", saveSettings);
    $(id).addEventListener("change", saveSettings);
  }
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  $("message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $("message").addEventListener("input", autosize);
  $("stop").addEventListener("click", () => { if (controller) controller.abort(); });
  $("new-chat").addEventListener("click", () => switchTo(null));
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    store.set("key", $("key").value.trim());
    $("key").value = "";
    loadModels();
  });
  $("log").addEventListener("click", (e) => {
    const b = e.target.closest("button.copy");
    if (!b) return;
    const code = b.closest(".code").querySelector("code").textContent;
    navigator.clipboard.writeText(code).then(() => { b.textContent = "Copied"; }, () => { b.textContent = "Copy failed"; });
  });
  if (current && !convo()) current = null;
  render();
  loadModels();
  $("message").focus();
}

init();
