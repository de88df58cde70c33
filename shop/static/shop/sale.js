// The flash-sale page: places the order with an Idempotency-Key and follows it. Either origin
// may answer: the hot path (202, then the status URL is polled) or the monolith (201, placed
// and final). A retry of one submission re-sends its key; a new attempt after a definite "no"
// (a field to correct, a declined card) gets a new key, since its body differs.
(function () {
  "use strict";

  var form = document.getElementById("buy");
  if (!form) return;
  var button = document.getElementById("buy-button");
  var result = document.getElementById("result");
  var ordersUrl = form.dataset.ordersUrl;
  var stockUrl = form.dataset.stockUrl;
  var allocated = parseInt(form.dataset.allocated, 10) || 0;
  var priceCents = parseInt(form.dataset.priceCents, 10) || 0;
  var key = null; // the key of the submission in flight or to be retried
  var done = false; // an order was placed or is on its way: the form's job is over
  // Why the button cannot be used ("Sold out", "Not on sale"), or null: the stock figures
  // the page refreshes itself with set it both ways, so a page opened before the sale starts,
  // or sold out before units came back, lets the buyer order once the sale is open again.
  var blocked = button.disabled ? button.textContent : null;
  // The units left that the page shows, and after this buyer's own order the most it may show
  // until the figures (fed by the log, a moment behind) count that order too: the page never
  // offers the units the buyer has just taken.
  var shownLeft = parseInt(document.getElementById("stock").dataset.remaining, 10) || 0;
  var ceiling = null;
  var ceilingUntil = 0;
  var CEILING_MS = 10000;

  function money(cents) {
    return "$" + Math.floor(cents / 100).toLocaleString("en-US") + "." + String(cents % 100).padStart(2, "0");
  }
  function quantity() {
    return parseInt(form.quantity.value, 10) || 1;
  }
  function label() {
    return "Buy now — " + money(priceCents * quantity());
  }
  // The price a 202 charges now, as the stock figures bring it: the page may have been loaded
  // before a sale closed and opened again at another price (or exported, as the mini-site's).
  function priceShow(cents) {
    if (typeof cents !== "number" || cents === priceCents) return;
    priceCents = cents;
    form.dataset.priceCents = String(cents);
    document.querySelector(".product-detail-price .price").textContent = money(cents);
    if (!key && !done) ready();
  }
  // The sale's start as the page words it ("Sat 28 Nov, 09:00", in UTC), and the start it
  // shows: a merchant may move it while the sale is open, and the page says the new one.
  var DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var startsAt = form.dataset.startsAt ? Date.parse(form.dataset.startsAt) : null;
  function startWords(ms) {
    var d = new Date(ms);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return DAYS[d.getUTCDay()] + " " + d.getUTCDate() + " " + MONTHS[d.getUTCMonth()] + ", " +
      two(d.getUTCHours()) + ":" + two(d.getUTCMinutes());
  }
  function startShow(iso) {
    if (iso === undefined) return;
    var ms = iso ? Date.parse(iso) : null;
    if (ms === startsAt || startsAt === null || ms === null) { startsAt = ms; return; }
    var before = startWords(startsAt), after = startWords(ms);
    startsAt = ms;
    ["sale-banner", "stock-text", "sale-closed"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el && el.dataset.notStarted) el.dataset.notStarted = el.dataset.notStarted.replace(before, after);
    });
  }
  function ready(text) {
    button.disabled = Boolean(blocked);
    button.textContent = blocked || text || label();
  }
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }
  // The last order this tab sent, kept over a reload or a Back and forward (sessionStorage: this
  // tab only) until it is settled (a definite "no", or the order complete or failed): its key
  // and, once accepted, its number (nothing the buyer typed is kept). A buyer whose answer was
  // lost on a bad network, who pulls to refresh and orders again, sends its key: the same
  // order, never a second charge.
  var SENT = "sale-sent:" + ordersUrl;
  function sentRead() {
    try { return JSON.parse(sessionStorage.getItem(SENT)) || null; } catch (e) { return null; }
  }
  function sentWrite(sent) {
    try {
      if (sent) sessionStorage.setItem(SENT, JSON.stringify(sent));
      else sessionStorage.removeItem(SENT);
    } catch (e) { /* storage refused (private mode, full): the page keeps the key until it is left */ }
  }
  // The key a submission is sent with: the one in flight or to retry, or the one this tab sent
  // before a reload and has no answer for, or a new one. Kept whatever the form says now: a
  // buyer who lost the answer may fix a detail before sending again, and the first order may
  // stand all the same (its key with other details is answered 422, and the page says so),
  // as when the form is changed before a retry without a reload.
  function keyFor() {
    if (key) return key;
    var sent = sentRead();
    if (sent && sent.key) return sent.key;
    var fresh = newKey();
    sentWrite({ key: fresh });
    return fresh;
  }
  function showErrors(fields) {
    document.querySelectorAll("[data-for]").forEach(function (el) {
      var message = (fields || {})[el.dataset.for] || "";
      el.textContent = Array.isArray(message) ? message.join(" ") : message;
      var field = el.closest(".field");
      field.classList.toggle("has-error", Boolean(message));
      var input = field.querySelector("input, select");
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    });
  }
  // The button the buyer pressed is disabled while the order is sent, which drops the focus:
  // it goes to the first field to correct, or to what became of the order.
  function focusFirstError() {
    var invalid = form.querySelector('[aria-invalid="true"]');
    if (invalid) invalid.focus();
  }
  function focusResult() {
    if (!result.contains(document.activeElement)) result.focus();
  }
  // Rewritten only when it changes: the status is polled, and the live region would otherwise
  // read the same words again at every poll.
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }
  function show(number, state, detail, link) {
    result.hidden = false;
    result.querySelector(".sale-result-head").hidden = false;
    result.className = "sale-result is-" + state;
    setText(document.getElementById("order-number"), number || "");
    setText(document.getElementById("order-state"), state);
    setText(document.getElementById("order-detail"), detail || "");
    var anchor = document.getElementById("order-link");
    anchor.hidden = !link;
    if (link) anchor.href = link;
  }
  function failed(detail) {
    show("", "failed", detail);
    result.querySelector(".sale-result-head").hidden = true;
  }
  // No answer the page can read (the network dropped it, or a server on the way failed): the
  // order may have been placed all the same, so it is not told as failed. The retry sends the
  // same key, which gives back that order if it was placed, and orders once if it was not.
  function unanswered(detail) {
    show("", "processing", detail + " Tap the button again: if your order reached us, you get that same order, never a second one.");
    result.querySelector(".sale-result-head").hidden = true;
  }

  function poll(url, number) {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        return r.json().then(function (body) { return [r, body]; });
      })
      .then(function (pair) {
        var r = pair[0], body = pair[1];
        if (r.status === 404) {
          show(number, "processing", "We cannot show this order's progress here; it is in our system and we will email you.");
          return;
        }
        if (!r.ok) throw new Error("status " + r.status);
        show(body.number, body.status, body.detail);
        if (body.status === "processing") {
          var wait = parseInt(r.headers.get("Retry-After") || "2", 10);
          setTimeout(function () { poll(url, number); }, wait * 1000);
          return;
        }
        // Settled: a reload shows the form again, and what is ordered from it is a new order.
        sentWrite(null);
        if (body.status === "failed") {
          // A failed order is final: the corrected form is a new order, with a new key. Its
          // units are on sale again.
          done = false;
          key = null;
          ceiling = null;
          ready();
        }
        refreshStock();
      })
      .catch(function () { setTimeout(function () { poll(url, number); }, 3000); });
  }

  // The words an element carries for a state (data-open, data-sold-out, …), or null.
  function wordsFor(el, state) {
    if (!el) return null;
    var words = el.dataset[state.replace(/_([a-z])/g, function (m, c) { return c.toUpperCase(); })];
    return words === undefined ? null : words;
  }
  // The banner, the tag, the stock's words and its bar follow the sale's state: open,
  // sold_out, not_started or ended. Only an open sale's bar measures what is left. Outside an
  // open sale a note of what to do stands in for the form, unless this page has an order
  // under way (its form shows what was ordered).
  function showState(state, remaining) {
    shownLeft = remaining;
    ["sale-banner", "sale-tag", "stock"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.dataset.state = state;
    });
    var banner = wordsFor(document.getElementById("sale-banner"), state);
    if (banner !== null) document.getElementById("sale-banner-text").textContent = banner;
    var tag = document.getElementById("sale-tag");
    var tagWords = wordsFor(tag, state);
    if (tagWords !== null) tag.textContent = tagWords;
    var text = document.getElementById("stock-text");
    if (state === "open") {
      text.innerHTML = 'Hurry — only <span class="left"></span> left';
      text.querySelector(".left").textContent = remaining;
    } else {
      var words = wordsFor(text, state);
      if (words !== null) text.textContent = words;
    }
    document.getElementById("stock").classList.toggle("is-sold-out", state === "sold_out");
    var meter = document.getElementById("stock-meter");
    meter.hidden = state !== "open" && state !== "sold_out";
    document.getElementById("stock-bar").setAttribute("width",
      (state === "open" && allocated ? Math.round(100 * remaining / allocated) : 0) + "%");
    var closed = document.getElementById("sale-closed");
    var formShown = state === "open" || Boolean(key) || done;
    // A buyer filling the form as it goes would have the focus dropped to the top of the page:
    // it goes to the note that stands in for the form, which is read out as it takes it.
    var focusInForm = form.contains(document.activeElement);
    form.hidden = !formShown;
    closed.hidden = formShown;
    var note = wordsFor(closed, state);
    if (note !== null) document.getElementById("sale-closed-text").textContent = note;
    if (!formShown && focusInForm) closed.focus();
  }

  // This buyer's order took `units`: the page shows them gone at once, and no figure read
  // before the order was counted brings them back.
  function ownOrderTaken(units) {
    ceiling = Math.max(shownLeft - units, 0);
    ceilingUntil = Date.now() + CEILING_MS;
    showState(ceiling > 0 ? "open" : "sold_out", ceiling);
  }

  function refreshStock() {
    if (!stockUrl) return;
    fetch(stockUrl, { headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 404) {
          // The hot path's own "no sale here" (the sale was closed, or the product taken off
          // sale) while the edge still sends this page's requests to it: the sale has ended,
          // and an order sent from here would be refused. Any other 404 (the storefront's,
          // once the route is off, where an order is still placed) tells nothing.
          return r.json().then(function (body) {
            if (body.error !== "not_hot" && body.error !== "not_on_sale") throw new Error("no stock figures here");
            return { state: "ended", remaining: 0 };
          });
        }
        if (!r.ok) throw new Error("no stock figures here");
        return r.json();
      })
      .then(function (s) {
        priceShow(s.price_cents);
        startShow(s.starts_at);
        var state = s.state, left = s.remaining;
        if (ceiling !== null && (left <= ceiling || Date.now() > ceilingUntil)) ceiling = null;
        if (ceiling !== null && state === "open") {
          left = ceiling;
          if (left === 0) state = "sold_out";
        }
        showState(state, left);
        if (!key && !done) {
          if (state === "open") blocked = left > 0 ? null : "Sold out";
          else blocked = state === "sold_out" ? "Sold out" : "Not on sale";
          ready();
        }
      })
      .catch(function () {});
  }
  // A page exported to the mini-site holds the figures and the price of its export: it asks at
  // once. One the hot path rendered is as fresh as the figures; it asks in 5 s, as everyone does.
  if ("exported" in form.dataset) refreshStock();
  setInterval(refreshStock, 5000);

  // The basket lives with the monolith: its count is asked for, so the page itself reads no session.
  fetch("/api/basket", { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error("no basket here"); return r.json(); })
    .then(function (basket) {
      var el = document.querySelector("[data-sale-basket-count]");
      el.textContent = String(basket.count);
      el.setAttribute("aria-label", basket.count + (basket.count === 1 ? " item" : " items") + " in basket");
      el.hidden = false;
    })
    .catch(function () {});

  // A reload while the order is placed (pull-to-refresh to see it move) shows that order and
  // follows it again, as the page did before, rather than an empty form to order again from.
  var accepted = sentRead();
  if (accepted && accepted.number && accepted.statusUrl) {
    key = accepted.key;
    done = true;
    button.disabled = true;
    button.textContent = "Ordered";
    form.hidden = false;
    document.getElementById("sale-closed").hidden = true;
    show(accepted.number, "processing", "Your items are reserved; we are placing your order.");
    poll(accepted.statusUrl, accepted.number);
  }

  form.quantity.addEventListener("change", function () { if (!key && !done) ready(); });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (done) return;
    showErrors({});
    button.disabled = true;
    button.textContent = "Ordering…";
    var body = {
      quantity: quantity(),
      customer: { name: form.name.value, email: form.email.value },
      payment: { card_number: form.card.value },
    };
    key = keyFor();
    fetch(ordersUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": key },
      body: JSON.stringify(body),
    })
      .then(function (r) {
        return r.json().then(function (data) { return [r, data]; }, function () { return [r, {}]; });
      })
      .then(function (pair) {
        var r = pair[0], data = pair[1];
        if (r.status === 202) {
          done = true;
          button.textContent = "Ordered";
          sentWrite({ key: key, number: data.number, statusUrl: data.status_url });
          show(data.number, "processing", "Your items are reserved; we are placing your order.");
          ownOrderTaken(body.quantity);
          focusResult();
          poll(data.status_url, data.number);
          refreshStock();
          return;
        }
        if (r.status === 201) {
          // Placed by the shop itself (the sale had closed): the sale's figures move on their own.
          // Placed for good, so settled: what this tab orders after a reload is a new order.
          sentWrite(null);
          done = true;
          button.textContent = "Ordered";
          show(data.number, "complete", "Thank you! Your order is placed.", data.order_url);
          focusResult();
          refreshStock();
          return;
        }
        if (r.status >= 500) {
          // Nothing is known either way: a gateway's 502 or 504 may come after the order was
          // accepted behind it. The retry sends the same key, so it cannot order twice.
          ready(label() + " (try again)");
          unanswered(data.detail || "Our order service did not answer in time.");
          focusResult();
          return;
        }
        if (r.status === 422 && data.error === "idempotency_key_reused") {
          // This page's first order reached us, its answer lost on the way back, and the form
          // was changed since: that order stands with the details first sent. A new key here
          // would charge the buyer a second time for one purchase, so the form's job is over.
          // The key is known to be that order's: kept, the same details ordered after the reload
          // the page asks for would only show that order again, never the order the buyer asked.
          sentWrite(null);
          done = true;
          button.textContent = "Ordered";
          show("", "processing", "We already have an order from this page, with the details you first entered: " +
            "its email tells you how it goes, and Find an order shows it. Reload the page to order again.");
          result.querySelector(".sale-result-head").hidden = true;
          focusResult();
          return;
        }
        key = null; // a definite "no": nothing was ordered, the next attempt is a new order
        sentWrite(null);
        if (r.status === 400) { ready(); showErrors(data.fields); focusFirstError(); return; }
        if (r.status === 409 && data.error === "sold_out" && data.remaining > 0) {
          // Fewer left than asked for: the buyer may still order what is left.
          showState("open", data.remaining); ready(); failed(data.detail); return;
        }
        if (r.status === 409 && data.error === "sold_out") { blocked = "Sold out"; ready(); failed("Sorry, it just sold out."); return; }
        if (r.status === 429) { ready(); failed("Too many attempts — please wait " + (r.headers.get("Retry-After") || "a few") + " seconds."); return; }
        if (r.status === 402) { ready(); failed(data.detail || "Your card was declined; please check the number or use another card."); return; }
        ready();
        failed(data.detail || "Something went wrong; please try again.");
      })
      .then(function () { if (!result.hidden && document.activeElement === document.body) focusResult(); })
      .catch(function () {
        ready(label() + " (try again)");
        unanswered("The connection dropped before your order's answer came.");
        button.focus();
      });
  });
})();
