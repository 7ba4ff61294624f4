// The local Slack page: polls /ui/state and draws the channel, threads, ephemeral messages and
// modals; sends slash commands, messages and button clicks back through /ui/*.
//
// Safety rule: text from messages is never put into innerHTML. The only HTML inserted is the
// server's pre-rendered, escaped fields (named "html" / "label_html"), built by slackfake/mrkdwn.py.
"use strict";

(function () {
  const POLL_MS = 500;
  const query = new URLSearchParams(window.location.search);
  const ui = {
    user: query.get("user") || window.localStorage.getItem("slackfake.user") || "",
    channel: query.get("channel") || "",
    threadTs: query.get("thread") || null,
    highlightTs: null,
    lastRaw: "",
    state: null,
    modalKey: "",
    pending: false,
    home: query.get("tab") === "home",
  };

  // Permalinks look like /archives/C0OPS/p1716900100000200?thread_ts=...
  const permalink = window.location.pathname.match(/^\/archives\/([^/]+)\/p(\d+)(\d{6})$/);
  if (permalink) {
    ui.channel = permalink[1];
    ui.highlightTs = `${permalink[2]}.${permalink[3]}`;
    ui.threadTs = query.get("thread_ts") || null;
  }

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "trustedHtml") node.innerHTML = value; // server-escaped HTML only
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function timeOf(ts) {
    const date = new Date(parseFloat(ts) * 1000);
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  let toastTimer = null;
  function toast(message, kind) {
    const box = $("toast");
    box.textContent = message;
    box.dataset.kind = kind || "error";
    box.hidden = false;
    window.clearTimeout(toastTimer);
    toastTimer = window.setTimeout(() => { box.hidden = true; }, 8000);
  }

  async function post(path, body) {
    try {
      const response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(Object.assign({ user: ui.user, channel: ui.channel }, body)),
      });
      const data = await response.json();
      if (!data.ok) toast(data.message || `Failed: ${data.error}`);
      return data;
    } catch (err) {
      toast(`The local Slack stand-in is unreachable (${err}).`);
      return { ok: false, error: "unreachable" };
    } finally {
      schedulePoll(0);
    }
  }

  // ----- confirm dialog ------------------------------------------------------------------
  function confirmDialog(confirm) {
    return new Promise((resolve) => {
      const root = $("confirm-root");
      const finish = (answer) => {
        root.hidden = true;
        root.replaceChildren();
        document.removeEventListener("keydown", onKey);
        resolve(answer);
      };
      const onKey = (event) => { if (event.key === "Escape") finish(false); };
      document.addEventListener("keydown", onKey);
      const dialog = el("div", { class: "dialog", role: "dialog", "aria-modal": "true",
                                 "aria-label": confirm.title, "data-testid": "confirm-dialog" },
        el("h2", { "data-testid": "confirm-title" }, confirm.title),
        el("div", { class: "dialog-body", "data-testid": "confirm-text", trustedHtml: confirm.html }),
        el("div", { class: "dialog-buttons" },
          el("button", { type: "button", class: "sk-button", "data-testid": "confirm-deny",
                         onclick: () => finish(false) }, confirm.deny),
          el("button", { type: "button", class: `sk-button ${confirm.style || "primary"}`,
                         "data-testid": "confirm-confirm", onclick: () => finish(true) },
             confirm.confirm)));
      root.replaceChildren(dialog);
      root.hidden = false;
      dialog.querySelector("[data-testid=confirm-confirm]").focus();
    });
  }

  // ----- interactive elements ------------------------------------------------------------
  async function act(message, element, value, control) {
    if (element.confirm && !(await confirmDialog(element.confirm))) return;
    if (control) control.disabled = true;
    if (control) control.classList.add("loading");
    if (message.home) {
      const click = { action_id: element.action_id, block_id: element.block_id };
      if (value !== undefined && value !== null) click.value = value;
      await post("/ui/home_click", click);
      if (control) { control.disabled = false; control.classList.remove("loading"); }
      return;
    }
    const payload = {
      channel: message.channel,
      message_ts: message.ts,
      action_id: element.action_id,
      block_id: element.block_id,
    };
    if (value !== undefined && value !== null) payload.value = value;
    await post("/ui/click", payload);
    if (control) { control.disabled = false; control.classList.remove("loading"); }
  }

  function renderElement(message, element) {
    if (element.kind === "button") {
      const button = el("button", {
        type: "button",
        class: `sk-button ${element.style || ""}`.trim(),
        "data-testid": "button",
        "data-action-id": element.action_id,
        "data-block-id": element.block_id,
        "data-value": element.value,
        "data-style": element.style,
        "data-has-confirm": element.confirm ? "true" : null,
        trustedHtml: element.label_html,
      });
      button.addEventListener("click", () => {
        const url = safeUrl(element.url);
        if (url) window.open(url, "_blank", "noopener");
        act(message, element, undefined, button);
      });
      return button;
    }
    if (element.kind === "select") {
      const select = el("select", { class: "sk-select", "data-testid": "select",
                                    "data-action-id": element.action_id,
                                    "data-block-id": element.block_id },
        el("option", { value: "" }, element.type === "overflow" ? "⋯" : element.placeholder),
        element.options.map((o) => el("option", { value: o.value }, o.label)));
      select.addEventListener("change", () => {
        if (select.value) act(message, element, select.value, select);
      });
      return select;
    }
    if (element.kind === "image") {
      const url = safeUrl(element.url);
      return url ? el("img", { class: "sk-image-small", src: url, alt: element.alt }) : null;
    }
    return el("span", { class: "unsupported" }, `[${element.type}]`);
  }

  function renderBlock(message, block) {
    const common = { "data-block-id": block.block_id || null };
    switch (block.kind) {
      case "header":
        return el("div", Object.assign({ class: "block block-header", "data-testid": "block-header",
                                         trustedHtml: block.html }, common));
      case "section": {
        const section = el("div", Object.assign({ class: "block block-section",
                                                  "data-testid": "block-section" }, common));
        const main = el("div", { class: "section-main" });
        if (block.html) main.append(el("div", { class: "section-text", trustedHtml: block.html }));
        if (block.fields && block.fields.length) {
          main.append(el("div", { class: "section-fields" },
            block.fields.map((html) => el("div", { class: "section-field",
                                                   "data-testid": "section-field",
                                                   trustedHtml: html }))));
        }
        section.append(main);
        if (block.accessory) {
          section.append(el("div", { class: "section-accessory" },
                            renderElement(message, block.accessory)));
        }
        return section;
      }
      case "context":
        return el("div", Object.assign({ class: "block block-context",
                                         "data-testid": "block-context" }, common),
          block.elements.map((item) => item.kind === "text"
            ? el("span", { class: "context-item", trustedHtml: item.html })
            : renderElement(message, item)));
      case "divider":
        return el("hr", Object.assign({ class: "block block-divider",
                                        "data-testid": "block-divider" }, common));
      case "actions":
        return el("div", Object.assign({ class: "block block-actions",
                                         "data-testid": "block-actions" }, common),
          block.elements.map((element) => renderElement(message, element)));
      case "image": {
        const url = safeUrl(block.url);
        return el("figure", Object.assign({ class: "block block-image",
                                            "data-testid": "block-image" }, common),
          url ? el("img", { src: url, alt: block.alt }) : null,
          block.title_html ? el("figcaption", { trustedHtml: block.title_html }) : null);
      }
      case "markdown":
        return el("div", Object.assign({ class: "block block-markdown", "data-testid": "block-markdown",
                                         trustedHtml: block.html }, common));
      case "rich_text":
        return null; // the message's text carries the same content
      default:
        return el("div", { class: "block unsupported", "data-testid": "block-unsupported" },
                  `[unsupported block: ${block.type || block.kind}]`);
    }
  }

  // ----- messages --------------------------------------------------------------------------
  function renderMessage(message, options) {
    const inThread = Boolean(options && options.inThread);
    const ephemeral = message.kind === "ephemeral";
    const author = message.author;
    const node = el("div", {
      class: `message ${message.kind}${message.ts === ui.highlightTs ? " highlight" : ""}`,
      "data-testid": inThread ? "thread-message" : "message",
      "data-ts": message.ts,
      "data-channel": message.channel,
      "data-thread-ts": message.thread_ts,
      "data-user": author.id,
      "data-author": author.name,
      "data-kind": message.kind,
      "data-ephemeral": ephemeral ? "true" : null,
      "data-edited": message.edited ? "true" : null,
      "data-reply-count": message.reply_count || 0,
      id: `${inThread ? "t" : "m"}${message.ts.replace(".", "")}`,
    });
    node.append(el("div", { class: `avatar${author.is_bot ? " bot" : ""}`, "aria-hidden": "true" },
                   (author.name || "?").slice(0, 1).toUpperCase()));
    const body = el("div", { class: "message-body" });
    body.append(el("div", { class: "message-meta" },
      el("span", { class: "author", "data-testid": "message-author" }, author.name),
      author.is_bot && author.id !== "USLACKBOT" ? el("span", { class: "badge" }, "APP") : null,
      el("time", { class: "ts", title: message.ts }, timeOf(message.ts)),
      message.edited ? el("span", { class: "edited", "data-testid": "edited" }, "(edited)") : null));
    if (message.blocks && message.blocks.length) {
      body.append(el("div", { class: "blocks", "data-testid": "blocks" },
                     message.blocks.map((block) => renderBlock(message, block))));
    } else {
      body.append(el("div", { class: "message-text", "data-testid": "message-text",
                              trustedHtml: message.html }));
    }
    for (const file of message.files || []) {
      const url = typeof file.url === "string" && file.url.startsWith("/files/") ? file.url : null;
      body.append(el("figure", { class: "file", "data-testid": "file", "data-file-id": file.id,
                                 "data-name": file.name },
        file.image && url ? el("img", { class: "file-image", "data-testid": "file-image",
                                        src: url, alt: file.alt }) : null,
        el("figcaption", { class: "file-title" }, file.title)));
    }
    for (const attachment of message.attachments || []) {
      const bar = el("div", { class: "attachment", trustedHtml: attachment.html });
      if (/^#?[0-9a-f]{3,6}$/i.test(attachment.color)) {
        bar.style.borderLeftColor = attachment.color.startsWith("#") ? attachment.color
                                                                     : `#${attachment.color}`;
      }
      body.append(bar);
    }
    if (message.reactions && message.reactions.length) {
      body.append(el("div", { class: "reactions" }, message.reactions.map((r) =>
        el("span", { class: "reaction", "data-testid": "reaction", "data-name": r.name,
                     title: r.users.join(", ") }, `${r.emoji} ${r.count}`))));
    }
    if (!inThread && message.reply_count > 0) {
      const label = `${message.reply_count} ${message.reply_count === 1 ? "reply" : "replies"}`;
      body.append(el("button", {
        type: "button", class: "reply-count", "data-testid": "reply-count",
        "data-thread-ts": message.ts, onclick: () => openThread(message.ts),
      }, label, message.reply_users && message.reply_users.length
        ? el("span", { class: "reply-users" }, ` · ${message.reply_users.join(", ")}`) : null));
    } else if (!inThread && message.kind === "message") {
      body.append(el("button", { type: "button", class: "reply-link", "data-testid": "reply-in-thread",
                                 "data-thread-ts": message.ts,
                                 onclick: () => openThread(message.ts) }, "Reply in thread"));
    }
    if (ephemeral) {
      body.append(el("div", { class: "ephemeral-footer" },
        el("span", { "data-testid": "ephemeral-label" }, "👁 Only visible to you"),
        el("button", { type: "button", class: "link", "data-testid": "dismiss",
                       onclick: () => post("/ui/dismiss", { ts: message.ts }) }, "Dismiss")));
    }
    node.append(body);
    return node;
  }

  function openThread(ts) {
    ui.threadTs = ts;
    updateUrl();
    render();
    $("thread-input").focus();
  }

  function closeThread() {
    ui.threadTs = null;
    updateUrl();
    render();
  }

  // ----- modals ----------------------------------------------------------------------------
  function renderModal(state) {
    const root = $("modal-root");
    const view = state.views.length ? state.views[state.views.length - 1] : null;
    const key = view ? JSON.stringify(view) : "";
    if (key === ui.modalKey) return;
    ui.modalKey = key;
    if (!view) { root.hidden = true; root.replaceChildren(); return; }
    // Keep what the user typed when the same view comes back (e.g. with errors).
    const typed = {};
    const previous = root.querySelector("[data-testid=modal]");
    if (previous && previous.getAttribute("data-view-id") === view.id) {
      for (const input of previous.querySelectorAll("[data-testid=modal-input]")) {
        typed[input.getAttribute("data-block-id")] = input.value;
      }
    }
    const form = el("form", { class: "dialog modal", "data-testid": "modal", "data-view-id": view.id,
                              "data-callback-id": view.callback_id, role: "dialog",
                              "aria-modal": "true", "aria-label": view.title });
    form.append(el("h2", { "data-testid": "modal-title" }, view.title));
    const fakeMessage = { channel: ui.channel, ts: "" };
    for (const block of view.blocks) {
      if (block.kind !== "input") {
        const drawn = renderBlock(fakeMessage, block);
        if (drawn) form.append(drawn);
        continue;
      }
      const id = `input-${block.block_id}`;
      let control;
      if (block.element_type === "static_select") {
        control = el("select", { id }, el("option", { value: "" }, block.placeholder || "Choose…"),
                     block.options.map((o) => el("option", { value: o.value }, o.label)));
      } else if (block.multiline) {
        control = el("textarea", { id, rows: 3, placeholder: block.placeholder });
        control.value = block.initial_value || "";
      } else {
        control = el("input", { id, type: "text", placeholder: block.placeholder });
        control.value = block.initial_value || "";
      }
      control.setAttribute("data-testid", "modal-input");
      control.setAttribute("data-block-id", block.block_id);
      control.setAttribute("data-action-id", block.action_id);
      if (Object.prototype.hasOwnProperty.call(typed, block.block_id)) {
        control.value = typed[block.block_id];
      }
      const error = view.errors[block.block_id];
      form.append(el("div", { class: "modal-input" },
        el("label", { for: id }, block.label, block.optional ? " (optional)" : ""),
        control,
        block.hint ? el("div", { class: "hint" }, block.hint) : null,
        error ? el("div", { class: "modal-error", "data-testid": "modal-error" }, error) : null));
    }
    form.append(el("div", { class: "dialog-buttons" },
      el("button", { type: "button", class: "sk-button", "data-testid": "modal-close",
                     onclick: () => post("/ui/view_close", { view_id: view.id }) }, view.close),
      el("button", { type: "submit", class: "sk-button primary", "data-testid": "modal-submit" },
         view.submit)));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = {};
      for (const input of form.querySelectorAll("[data-testid=modal-input]")) {
        values[input.getAttribute("data-block-id")] = input.value;
      }
      post("/ui/view_submit", { view_id: view.id, values });
    });
    root.replaceChildren(form);
    root.hidden = false;
  }

  // ----- App Home ----------------------------------------------------------------------------
  function openHome() {
    ui.home = true;
    ui.threadTs = null;
    updateUrl();
    render();
    post("/ui/home_open", {});
  }

  function renderHome(state) {
    const box = $("home");
    const home = state.home;
    const fakeMessage = { channel: "", ts: "", home: true };
    if (!home) {
      box.replaceChildren(el("div", { class: "empty", "data-testid": "home-empty" },
        `${state.bot.name} has not published a Home tab yet.`));
      return;
    }
    box.replaceChildren(el("div", { class: "blocks home-blocks", "data-testid": "home-blocks",
                                    "data-view-id": home.id },
      home.blocks.map((block) => renderBlock(fakeMessage, block))));
  }

  // ----- whole page --------------------------------------------------------------------------
  function renderChrome(state) {
    $("team-name").textContent = state.team.name;
    const picker = $("user-picker");
    const wanted = state.users.map((u) => `${u.id}:${u.name}:${u.groups.join(",")}`).join("|");
    if (picker.dataset.users !== wanted) {
      picker.dataset.users = wanted;
      picker.replaceChildren(...state.users.map((u) => el("option", { value: u.id },
        u.groups.length ? `${u.name} (@${u.groups.join(", @")})` : u.name)));
    }
    picker.value = state.me.id;
    $("channel-list").replaceChildren(...state.channels.map((c) => el("button", {
      type: "button",
      class: `channel-link${c.id === state.channel.id ? " active" : ""}`,
      "data-testid": "channel-link",
      "data-channel-id": c.id,
      onclick: () => {
        ui.channel = c.id; ui.threadTs = null; ui.home = false; updateUrl(); schedulePoll(0);
      },
    }, `# ${c.name}`)));
    $("home-link").classList.toggle("active", ui.home);
    for (const link of $("channel-list").children) {
      if (ui.home) link.classList.remove("active");
    }
    $("channel-name").textContent = `# ${state.channel.name}`;
    $("channel-topic").textContent = state.channel.topic || "";
    $("composer-input").placeholder =
      `Message #${state.channel.name}, or type a command such as /tikv help`;
    const status = $("app-status");
    status.dataset.connected = state.app_connected ? "true" : "false";
    status.textContent = state.app_connected ? `● ${state.bot.name} is connected`
                                             : `○ ${state.bot.name} is offline (no Socket Mode connection)`;
  }

  function render() {
    const state = ui.state;
    if (!state) return;
    renderChrome(state);
    $("home-pane").hidden = !ui.home;
    $("channel-pane").hidden = ui.home;
    if (ui.home) {
      renderHome(state);
      $("thread-panel").hidden = true;
      renderModal(state);
      return;
    }
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.replaceChildren(...state.messages.map((m) => renderMessage(m)));
    if (!state.messages.length) {
      list.append(el("div", { class: "empty", "data-testid": "empty-channel" },
                     "No messages yet. Try typing /tikv help below."));
    }
    if (atBottom) list.scrollTop = list.scrollHeight;
    if (ui.highlightTs) {
      const target = document.getElementById(`m${ui.highlightTs.replace(".", "")}`);
      if (target) { target.scrollIntoView({ block: "center" }); ui.highlightTs = null; }
    }
    const panel = $("thread-panel");
    const parent = ui.threadTs && state.messages.find((m) => m.ts === ui.threadTs);
    if (parent) {
      panel.hidden = false;
      panel.setAttribute("data-thread-ts", parent.ts);
      const box = $("thread-messages");
      const stick = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
      box.replaceChildren(
        renderMessage(parent, { inThread: true }),
        el("div", { class: "thread-divider", "data-testid": "thread-reply-count" },
           `${parent.reply_count} ${parent.reply_count === 1 ? "reply" : "replies"}`),
        ...parent.replies.map((r) => renderMessage(r, { inThread: true })));
      if (stick) box.scrollTop = box.scrollHeight;
    } else {
      panel.hidden = true;
      panel.removeAttribute("data-thread-ts");
    }
    renderModal(state);
  }

  function updateUrl() {
    const params = new URLSearchParams();
    if (ui.user) params.set("user", ui.user);
    if (ui.channel) params.set("channel", ui.channel);
    if (ui.threadTs) params.set("thread", ui.threadTs);
    if (ui.home) params.set("tab", "home");
    window.history.replaceState(null, "", `/?${params.toString()}`);
  }

  let pollTimer = null;
  let polling = false;
  function schedulePoll(delay) {
    window.clearTimeout(pollTimer);
    pollTimer = window.setTimeout(poll, delay);
  }

  async function poll() {
    if (polling) { schedulePoll(POLL_MS); return; }
    polling = true;
    try {
      const params = new URLSearchParams();
      if (ui.user) params.set("user", ui.user);
      if (ui.channel) params.set("channel", ui.channel);
      const response = await fetch(`/ui/state?${params.toString()}`, { cache: "no-store" });
      const raw = await response.text();
      if (!response.ok) {
        // An unknown user or channel in the URL: fall back to the defaults.
        ui.user = ""; ui.channel = ""; ui.lastRaw = "";
      } else if (raw !== ui.lastRaw) {
        ui.lastRaw = raw;
        ui.state = JSON.parse(raw);
        ui.user = ui.state.me.id;
        ui.channel = ui.state.channel.id;
        document.body.dataset.ready = "true";
        render();
      }
    } catch (err) {
      const status = $("app-status");
      status.dataset.connected = "false";
      status.textContent = "The local Slack stand-in is unreachable.";
    } finally {
      polling = false;
      schedulePoll(POLL_MS);
    }
  }

  async function send(input, extra) {
    const text = input.value.trim();
    if (!text || ui.pending) return;
    ui.pending = true;
    input.disabled = true;
    const result = await post(extra ? "/ui/message" : "/ui/command", Object.assign({ text }, extra || {}));
    input.disabled = false;
    ui.pending = false;
    if (result.ok) input.value = "";
    input.focus();
  }

  function start() {
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      send($("composer-input"));
    });
    $("thread-composer").addEventListener("submit", (event) => {
      event.preventDefault();
      if (ui.threadTs) send($("thread-input"), { thread_ts: ui.threadTs });
    });
    $("thread-close").addEventListener("click", closeThread);
    $("home-link").addEventListener("click", openHome);
    $("user-picker").addEventListener("change", (event) => {
      ui.user = event.target.value;
      window.localStorage.setItem("slackfake.user", ui.user);
      ui.lastRaw = "";
      updateUrl();
      schedulePoll(0);
    });
    schedulePoll(0);
    if (ui.home) post("/ui/home_open", {});
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
