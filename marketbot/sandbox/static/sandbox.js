// The sandbox page: one Telegram-like chat per person, side by side or one at a time.
//
// It is a thin client of the Telegram stand-in's /_sandbox API on this origin: sending, pressing a button,
// sharing a photo/location/contact each become one Update that the stand-in delivers to the gateway's
// webhook; the chat shown is what the stand-in stored from the bot's Bot API calls (edits applied in place,
// deleted messages gone). Nothing here talks to the bot's code or database.
"use strict";

const POLL_MS = 500;
const HIDDEN_POLL_MS = 3000;
const state = { config: null, panes: [], active: null, sideBySide: true };

async function request(method, path, body, contentType) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.body = contentType ? body : JSON.stringify(body);
    options.headers["Content-Type"] = contentType || "application/json";
  }
  const response = await fetch(path, options);
  if (!response.ok) {
    let reason = `${response.status}`;
    try { reason = (await response.json()).error || reason; } catch (_) { /* not JSON */ }
    throw new Error(reason);
  }
  return response.json();
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showConnection(problem) {
  const banner = document.getElementById("connection");
  banner.hidden = !problem;
  banner.textContent = problem || "";
}

// ---------------------------------------------------------------------------------------------------------
// One person's chat

class Pane {
  constructor(persona) {
    this.persona = persona;
    this.base = `/_sandbox/users/${persona.id}`;
    this.rendered = new Map(); // message_id → {json, node}
    this.seenNotices = null;
    this.unread = 0;
    this.lastBotId = null;
    this.build();
  }

  build() {
    const fragment = document.getElementById("pane-template").content.cloneNode(true);
    this.root = fragment.querySelector(".pane");
    this.root.id = `pane-${this.persona.id}`;
    this.root.dataset.user = String(this.persona.id);
    this.root.setAttribute("aria-label", `${this.persona.name}, ${this.persona.role.toLowerCase()}`);
    const avatar = this.root.querySelector(".avatar");
    avatar.textContent = this.persona.name[0];
    avatar.style.background = this.persona.color;
    this.root.querySelector(".name").textContent = this.persona.name;
    this.root.querySelector(".role").textContent = `${this.persona.role} · user ${this.persona.id}`;
    this.root.querySelector(".bot-name").textContent = `@${state.config.bot_username}`;
    this.messages = this.root.querySelector(".messages");
    this.messages.setAttribute("aria-label", `${this.persona.name}'s chat with the bot`);
    this.notices = this.root.querySelector(".notices");
    this.replyKeyboard = this.root.querySelector(".reply-keyboard");
    this.replyKeyboard.setAttribute("aria-label", "Keyboard from the bot");
    this.input = this.root.querySelector("input.text");
    this.input.setAttribute("aria-label", `Message as ${this.persona.name}`);
    this.root.querySelector("form.composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (!text) return;
      this.input.value = "";
      this.sendText(text);
    });
    this.root.querySelector(".photo").addEventListener("click", () => askPhoto(this));
    this.root.querySelector(".location").addEventListener("click", () => askLocation(this));
    this.root.querySelector(".contact").addEventListener("click", () => askContact(this));
    this.root.addEventListener("focusin", () => selectPane(this, { focus: false }));
  }

  // -- actions: each one is one Update, delivered by the stand-in like Telegram would -------------------

  async act(label, promise) {
    try {
      await promise;
      this.pollSoon();
    } catch (error) {
      this.notice(`Could not ${label}: ${error.message}`, true);
    }
  }

  sendText(text) {
    return this.act("send the message", request("POST", `${this.base}/messages`, {
      text, first_name: this.persona.name,
    }));
  }

  press(messageId, data, button) {
    if (button) {
      button.classList.add("pending");
      button.setAttribute("aria-busy", "true");
    }
    return this.act("press the button", request("POST", `${this.base}/callbacks`, {
      data, message_id: messageId, first_name: this.persona.name,
    }));
  }

  sendPhoto(blob, caption) {
    const query = new URLSearchParams({ first_name: this.persona.name });
    if (caption) query.set("caption", caption);
    return this.act("send the photo",
      request("POST", `${this.base}/photos?${query}`, blob, blob.type || "image/png"));
  }

  sendLocation(latitude, longitude) {
    return this.act("share the location", request("POST", `${this.base}/locations`, {
      latitude, longitude, first_name: this.persona.name,
    }));
  }

  sendContact(phone) {
    return this.act("share the contact", request("POST", `${this.base}/contacts`, {
      phone_number: phone, first_name: this.persona.name,
    }));
  }

  openDeepLink(payload) {
    return this.sendText(payload ? `/start ${payload}` : "/start");
  }

  // -- what the bot sent ----------------------------------------------------------------------------------

  pollSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), 120);
  }

  async poll() {
    clearTimeout(this.timer);
    try {
      const chat = await request("GET", `${this.base}/chat`);
      showConnection(null);
      this.render(chat.messages, chat.reply_keyboard);
      this.showNotices(chat.notices);
    } catch (error) {
      showConnection("Lost the connection to the local Telegram stand-in. Is `make run` still running?");
    }
    this.timer = setTimeout(() => this.poll(), document.hidden ? HIDDEN_POLL_MS : POLL_MS);
  }

  render(messages, replyKeyboard) {
    const nearBottom = this.messages.scrollHeight - this.messages.scrollTop - this.messages.clientHeight < 80;
    const present = new Set();
    let previous = null;
    let fresh = 0;
    for (const message of messages) {
      const id = message.message_id;
      present.add(id);
      const json = JSON.stringify(message);
      let entry = this.rendered.get(id);
      if (!entry) {
        entry = { json, node: this.messageNode(message) };
        this.rendered.set(id, entry);
        if (message.from && message.from.is_bot) fresh += 1;
      } else if (entry.json !== json) {
        const replacement = this.messageNode(message);
        keepFocus(entry.node, replacement);
        entry.node.replaceWith(replacement);
        entry.node = replacement;
        entry.json = json;
      }
      const expected = previous ? previous.nextElementSibling : this.messages.firstElementChild;
      if (expected !== entry.node) {
        if (previous) previous.after(entry.node); else this.messages.prepend(entry.node);
      }
      previous = entry.node;
    }
    for (const [id, entry] of this.rendered) {
      if (!present.has(id)) { entry.node.remove(); this.rendered.delete(id); }
    }
    this.renderReplyKeyboard(messages, replyKeyboard);
    if (fresh && this.lastBotId !== null) this.markUnread(fresh);
    const bots = messages.filter((m) => m.from && m.from.is_bot);
    this.lastBotId = bots.length ? bots[bots.length - 1].message_id : 0;
    if (nearBottom || fresh) this.messages.scrollTop = this.messages.scrollHeight;
  }

  messageNode(message) {
    const fromBot = Boolean(message.from && message.from.is_bot);
    const item = el("div", `message ${fromBot ? "incoming" : "outgoing"}`);
    item.dataset.messageId = String(message.message_id);
    const bubble = el("div", "bubble");
    item.append(bubble);
    if (message.photo && message.photo.length) bubble.append(photoNode(message));
    if (message.location) {
      const { latitude, longitude } = message.location;
      bubble.append(el("div", "location-card", `📍 Location ${latitude.toFixed(5)}, ${longitude.toFixed(5)}`));
    }
    if (message.contact) {
      bubble.append(el("div", "contact-card", `👤 ${message.contact.first_name} · ${message.contact.phone_number}`));
    }
    const text = message.text !== undefined ? message.text : message.caption;
    const entities = message.text !== undefined ? message.entities : message.caption_entities;
    if (text) {
      const body = el("div", "text");
      body.append(renderEntities(text, entities, this.linkActions()));
      bubble.append(body);
    }
    const meta = el("div", "meta");
    const time = new Date(message.date * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    meta.textContent = message.edit_date ? `edited ${time}` : time;
    bubble.append(meta);
    const markup = message.reply_markup;
    if (fromBot && markup && markup.inline_keyboard) item.append(this.inlineKeyboard(message, markup));
    return item;
  }

  linkActions() {
    return {
      link: (href) => {
        const payload = deepLinkPayload(href);
        return payload === null ? null : () => this.openDeepLink(payload);
      },
      command: (command) => this.sendText(command),
    };
  }

  inlineKeyboard(message, markup) {
    const keyboard = el("div", "inline-keyboard");
    keyboard.setAttribute("role", "group");
    keyboard.setAttribute("aria-label", "Buttons");
    markup.inline_keyboard.forEach((row, rowIndex) => {
      const line = el("div", "kb-row");
      row.forEach((button, column) => {
        let node;
        const payload = button.url ? deepLinkPayload(button.url) : null;
        if (button.url && payload === null) {
          node = el("a", "kb-button url", button.text);
          node.href = button.url;
          node.target = "_blank";
          node.rel = "noopener";
          node.title = `Opens ${button.url}`;
        } else {
          node = el("button", "kb-button", button.text);
          node.type = "button";
          if (payload !== null) node.addEventListener("click", () => this.openDeepLink(payload));
          else if (button.callback_data) {
            node.addEventListener("click", () => this.press(message.message_id, button.callback_data, node));
          } else node.disabled = true;
        }
        node.dataset.position = `${rowIndex}:${column}`;
        line.append(node);
      });
      keyboard.append(line);
    });
    return keyboard;
  }

  renderReplyKeyboard(messages, keyboard) {
    // The keyboard the bot last set (removed: null) stays until replaced; a one-time keyboard folds away
    // once the person has answered after it, as in Telegram's apps.
    let current = keyboard && keyboard.markup.keyboard ? keyboard : null;
    if (current && current.markup.one_time_keyboard) {
      const answered = messages.some((m) => !(m.from && m.from.is_bot) && m.message_id > current.message_id);
      if (answered) current = null;
    }
    const json = current ? JSON.stringify(current.markup) : "";
    if (json === this.replyKeyboardJson) return;
    this.replyKeyboardJson = json;
    this.replyKeyboard.replaceChildren();
    this.replyKeyboard.hidden = !current;
    if (!current) return;
    for (const row of current.markup.keyboard) {
      const line = el("div", "kb-row");
      for (const button of row) {
        const label = typeof button === "string" ? button : button.text;
        const node = el("button", "kb-button reply", label);
        node.type = "button";
        node.addEventListener("click", () => {
          if (button.request_location) askLocation(this);
          else if (button.request_contact) askContact(this);
          else this.sendText(label);
        });
        line.append(node);
      }
      this.replyKeyboard.append(line);
    }
  }

  showNotices(notices) {
    if (this.seenNotices === null) { // opening the page shows no old toasts
      this.seenNotices = new Set(notices.map((n) => n.id));
      return;
    }
    for (const notice of notices) {
      if (this.seenNotices.has(notice.id)) continue;
      this.seenNotices.add(notice.id);
      this.notice(notice.text, notice.show_alert);
    }
    for (const pending of this.root.querySelectorAll(".kb-button.pending")) {
      pending.classList.remove("pending");
      pending.removeAttribute("aria-busy");
    }
  }

  notice(text, sticky) {
    const toast = el("div", `toast${sticky ? " alert" : ""}`);
    toast.append(el("span", "", text));
    const close = el("button", "close", "✕");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", () => toast.remove());
    toast.append(close);
    this.notices.append(toast);
    if (!sticky) setTimeout(() => toast.remove(), 4000);
  }

  markUnread(count) {
    if (this.root.offsetParent !== null) return; // on screen: seen
    this.unread += count;
    this.tab.querySelector(".badge").textContent = String(this.unread);
    this.tab.querySelector(".badge").hidden = false;
  }
}

function keepFocus(oldNode, newNode) {
  const focused = document.activeElement;
  if (!focused || !oldNode.contains(focused)) return;
  const position = focused.dataset && focused.dataset.position;
  const target = (position && newNode.querySelector(`[data-position="${position}"]`))
    || newNode.querySelector(".kb-button");
  if (target) requestAnimationFrame(() => target.focus());
}

function photoNode(message) {
  const largest = message.photo[message.photo.length - 1];
  const figure = el("div", "photo");
  const image = document.createElement("img");
  image.src = `/_sandbox/files/${encodeURIComponent(largest.file_id)}`;
  image.width = largest.width;
  image.height = largest.height;
  image.loading = "lazy";
  const caption = message.caption ? message.caption.split("\n")[0] : "";
  image.alt = caption ? `Photo: ${caption}` : "Photo";
  image.addEventListener("error", () => {
    // A file_id the stand-in has no bytes for (e.g. made up by a test): show where the photo would be.
    image.replaceWith(el("div", "photo-missing", "🖼 Photo"));
  });
  figure.append(image);
  return figure;
}

// A t.me link to our bot opens the bot with a /start payload, as it does in Telegram.
function deepLinkPayload(href) {
  let url;
  try { url = new URL(href); } catch (_) { return null; }
  const bot = state.config.bot_username.toLowerCase();
  if (!/^(t\.me|telegram\.me)$/i.test(url.hostname)) return null;
  if (url.pathname.replace(/^\//, "").toLowerCase() !== bot) return null;
  return url.searchParams.get("start") || "";
}

// ---------------------------------------------------------------------------------------------------------
// Dialogs: photo, location (map), contact

function openDialog(id, onSend) {
  const dialog = document.getElementById(id);
  const form = dialog.querySelector("form");
  dialog.returnValue = "";
  dialog.onclose = () => {
    if (dialog.returnValue === "send") onSend(form);
    const pane = state.active;
    if (pane) pane.input.focus();
  };
  dialog.showModal();
  return dialog;
}

function askPhoto(pane) {
  const dialog = openDialog("photo-dialog", async (form) => {
    const file = form.elements.file.files[0];
    const blob = file || await samplePhoto();
    pane.sendPhoto(blob, form.elements.caption.value.trim());
    form.reset();
  });
  dialog.querySelector("input[type=file]").focus();
}

function samplePhoto() {
  // A picture of a loaf and two buns drawn here, so trying the offer wizard needs no file at hand.
  const canvas = document.createElement("canvas");
  canvas.width = 640;
  canvas.height = 480;
  const g = canvas.getContext("2d");
  const hue = Math.floor(Math.random() * 360);
  g.fillStyle = `hsl(${hue}, 45%, 85%)`;
  g.fillRect(0, 0, 640, 480);
  g.fillStyle = "#f3ead8";
  g.beginPath(); g.ellipse(320, 300, 260, 120, 0, 0, Math.PI * 2); g.fill();
  g.fillStyle = "#c98a3e";
  g.beginPath(); g.ellipse(260, 270, 150, 75, -0.15, 0, Math.PI * 2); g.fill();
  g.fillStyle = "#b5742d";
  for (const [x, y] of [[440, 300], [400, 230]]) { g.beginPath(); g.arc(x, y, 55, 0, Math.PI * 2); g.fill(); }
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

function askLocation(pane) {
  const dialog = openDialog("location-dialog", (form) => {
    const latitude = Number(form.elements.latitude.value);
    const longitude = Number(form.elements.longitude.value);
    if (Number.isFinite(latitude) && Number.isFinite(longitude)) pane.sendLocation(latitude, longitude);
  });
  const form = dialog.querySelector("form");
  if (!form.elements.latitude.value) {
    const [lat, lon] = state.config.city.center;
    form.elements.latitude.value = lat.toFixed(4);
    form.elements.longitude.value = lon.toFixed(4);
  }
  drawMap(dialog.querySelector(".map"), form);
}

function askContact(pane) {
  const dialog = openDialog("contact-dialog", (form) => pane.sendContact(form.elements.phone.value.trim()));
  const input = dialog.querySelector("input[name=phone]");
  input.value = pane.persona.phone;
  input.focus();
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A plain coordinate grid of the demo city with a few named places: enough to pick a spot, all local.
function drawMap(container, form) {
  const { bounds, landmarks } = state.config.city;
  const size = 300;
  const x = (lon) => ((lon - bounds.west) / (bounds.east - bounds.west)) * size;
  const y = (lat) => ((bounds.north - lat) / (bounds.north - bounds.south)) * size;
  const map = svg("svg", { viewBox: `0 0 ${size} ${size}`, class: "map-svg", "aria-hidden": "true" });
  map.append(svg("rect", { x: 0, y: 0, width: size, height: size, class: "land" }));
  map.append(svg("path", { d: `M0 ${y(1.272)} C ${x(103.84)} ${y(1.268)}, ${x(103.855)} ${y(1.276)}, `
    + `${x(103.862)} ${y(1.279)} S ${x(103.885)} ${y(1.29)}, ${size} ${y(1.292)} L ${size} ${size} L 0 ${size} Z`,
  class: "sea" }));
  const step = 0.01;
  for (let lat = Math.ceil(bounds.south / step) * step; lat <= bounds.north; lat += step) {
    map.append(svg("line", { x1: 0, x2: size, y1: y(lat), y2: y(lat), class: "grid" }));
    map.append(svg("text", { x: 2, y: y(lat) - 2, class: "grid-label" }, lat.toFixed(2)));
  }
  for (let lon = Math.ceil(bounds.west / step) * step; lon <= bounds.east; lon += step) {
    map.append(svg("line", { x1: x(lon), x2: x(lon), y1: 0, y2: size, class: "grid" }));
    map.append(svg("text", { x: x(lon) + 2, y: size - 3, class: "grid-label" }, lon.toFixed(2)));
  }
  for (const place of landmarks) {
    map.append(svg("circle", { cx: x(place.lon), cy: y(place.lat), r: 2.5, class: "landmark" }));
    map.append(svg("text", { x: x(place.lon) + 4, y: y(place.lat) + 3, class: "landmark-label" }, place.name));
  }
  const pin = svg("g", { class: "pin" });
  pin.append(svg("circle", { r: 6 }));
  map.append(pin);
  container.replaceChildren(map);

  const read = () => [Number(form.elements.latitude.value), Number(form.elements.longitude.value)];
  const place = () => {
    const [lat, lon] = read();
    pin.setAttribute("transform", `translate(${x(lon)} ${y(lat)})`);
    container.setAttribute("aria-valuetext", `${lat.toFixed(4)}, ${lon.toFixed(4)}`);
  };
  const set = (lat, lon) => {
    form.elements.latitude.value = lat.toFixed(4);
    form.elements.longitude.value = lon.toFixed(4);
    place();
  };
  map.addEventListener("click", (event) => {
    const box = map.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * size;
    const py = ((event.clientY - box.top) / box.height) * size;
    set(bounds.north - (py / size) * (bounds.north - bounds.south),
      bounds.west + (px / size) * (bounds.east - bounds.west));
  });
  container.onkeydown = (event) => {
    const moves = { ArrowUp: [0.001, 0], ArrowDown: [-0.001, 0], ArrowLeft: [0, -0.001], ArrowRight: [0, 0.001] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    const [lat, lon] = read();
    set(lat + move[0], lon + move[1]);
  };
  form.elements.latitude.oninput = place;
  form.elements.longitude.oninput = place;
  place();
}

// ---------------------------------------------------------------------------------------------------------
// Tabs and layout

function selectPane(pane, { focus }) {
  if (state.active === pane && !focus) return;
  state.active = pane;
  for (const other of state.panes) {
    const selected = other === pane;
    other.root.classList.toggle("active", selected);
    other.tab.setAttribute("aria-selected", String(selected));
    other.tab.tabIndex = selected ? 0 : -1;
  }
  pane.unread = 0;
  pane.tab.querySelector(".badge").hidden = true;
  if (focus) pane.input.focus();
}

function buildTabs() {
  const tabs = document.querySelector(".tabs");
  for (const pane of state.panes) {
    const tab = el("button", "tab");
    tab.type = "button";
    tab.id = `tab-${pane.persona.id}`;
    tab.setAttribute("role", "tab");
    tab.setAttribute("aria-controls", pane.root.id);
    tab.dataset.user = String(pane.persona.id);
    const dot = el("span", "dot");
    dot.style.background = pane.persona.color;
    tab.append(dot, el("span", "tab-name", pane.persona.name), el("span", "tab-role", pane.persona.role));
    const badge = el("span", "badge");
    badge.hidden = true;
    tab.append(badge);
    tab.addEventListener("click", () => selectPane(pane, { focus: true }));
    tab.addEventListener("keydown", (event) => {
      const index = state.panes.indexOf(pane);
      const delta = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!delta) return;
      const next = state.panes[(index + delta + state.panes.length) % state.panes.length];
      next.tab.focus();
      selectPane(next, { focus: false });
    });
    pane.root.setAttribute("aria-labelledby", tab.id);
    pane.tab = tab;
    tabs.append(tab);
  }
  const toggle = document.getElementById("layout-toggle");
  toggle.addEventListener("click", () => {
    state.sideBySide = !state.sideBySide;
    document.body.classList.toggle("single", !state.sideBySide);
    toggle.setAttribute("aria-pressed", String(state.sideBySide));
  });
}

async function main() {
  state.config = await request("GET", "/sandbox/config.json");
  document.querySelectorAll(".bot-name").forEach((node) => { node.textContent = `@${state.config.bot_username}`; });
  const container = document.getElementById("panes");
  for (const persona of state.config.personas) {
    const pane = new Pane(persona);
    state.panes.push(pane);
    container.append(pane.root);
  }
  buildTabs();
  // ?as=1002 picks the person; ?start=PAYLOAD opens the bot by a deep link as them, as t.me links do.
  const params = new URLSearchParams(window.location.search);
  const chosen = state.panes.find((p) => String(p.persona.id) === params.get("as")) || state.panes[0];
  selectPane(chosen, { focus: false });
  if (params.has("start")) {
    chosen.openDeepLink(params.get("start"));
    window.history.replaceState(null, "", window.location.pathname);
  }
  state.panes.forEach((pane, index) => setTimeout(() => pane.poll(), index * 100));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) state.panes.forEach((pane) => pane.pollSoon());
  });
}

main().catch((error) => showConnection(`The sandbox could not start: ${error.message}`));
