// Telegram message text + entities → DOM nodes, the way a Telegram client renders them.
//
// The Bot API stores a message as plain text plus a list of entities (bold, italic, links, commands...)
// whose offsets and lengths count UTF-16 code units, which is exactly how JavaScript indexes strings.
// Nodes are built with textContent, never innerHTML, so nothing in a message can inject markup.
"use strict";

const TAGS = {
  bold: "strong", italic: "em", underline: "u", strikethrough: "s", code: "code",
  blockquote: "blockquote", expandable_blockquote: "blockquote", spoiler: "span",
  mention: "span", hashtag: "span", cashtag: "span", phone_number: "span",
};

// `actions.link(href)` → optional click handler for a link; `actions.command(text)` sends a /command.
function renderEntities(text, entities, actions) {
  const sorted = (entities || [])
    .filter((e) => e.length > 0 && e.offset >= 0 && e.offset + e.length <= text.length)
    .slice()
    .sort((a, b) => a.offset - b.offset || b.length - a.length);
  const fragment = document.createDocumentFragment();
  appendRange(fragment, text, 0, text.length, sorted, actions);
  return fragment;
}

function appendRange(parent, text, start, end, entities, actions) {
  let position = start;
  let index = 0;
  while (index < entities.length) {
    const entity = entities[index];
    const entityEnd = entity.offset + entity.length;
    if (entity.offset < position) { index += 1; continue; } // overlaps what came before: skip it
    if (entity.offset > position) parent.append(text.slice(position, entity.offset));
    const inner = [];
    let next = index + 1;
    while (next < entities.length && entities[next].offset < entityEnd) {
      if (entities[next].offset + entities[next].length <= entityEnd) inner.push(entities[next]);
      next += 1;
    }
    const element = elementFor(entity, text.slice(entity.offset, entityEnd), actions);
    appendRange(element.content || element, text, entity.offset, entityEnd, inner, actions);
    parent.append(element.outer || element);
    position = entityEnd;
    index = next;
  }
  if (position < end) parent.append(text.slice(position, end));
}

function elementFor(entity, covered, actions) {
  switch (entity.type) {
    case "pre": {
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      pre.append(code);
      return { outer: pre, content: code };
    }
    case "text_link":
      return link(entity.url, actions);
    case "url":
      return link(/^https?:\/\//i.test(covered) ? covered : `https://${covered}`, actions);
    case "email":
      return link(`mailto:${covered}`, actions);
    case "bot_command": {
      const a = document.createElement("a");
      a.href = "#";
      a.className = "command";
      a.addEventListener("click", (event) => {
        event.preventDefault();
        actions.command(covered);
      });
      return a;
    }
    case "spoiler": {
      const span = document.createElement("span");
      span.className = "spoiler";
      span.tabIndex = 0;
      span.setAttribute("role", "button");
      span.setAttribute("aria-label", "Spoiler: activate to reveal");
      const reveal = () => { span.classList.add("revealed"); span.removeAttribute("role"); };
      span.addEventListener("click", reveal);
      span.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") reveal(); });
      return span;
    }
    default: {
      const element = document.createElement(TAGS[entity.type] || "span");
      element.className = `entity-${entity.type}`;
      return element;
    }
  }
}

function link(href, actions) {
  const a = document.createElement("a");
  const safe = /^(https?:|mailto:)/i.test(href || "") ? href : "#";
  a.href = safe;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  const handler = actions.link(safe);
  if (handler) {
    a.removeAttribute("target");
    a.addEventListener("click", (event) => { event.preventDefault(); handler(); });
  }
  return a;
}

window.renderEntities = renderEntities;
