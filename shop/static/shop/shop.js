// Progressive enhancement for the storefront: add to basket without leaving the page,
// keep the header's basket count fresh, and stop a checkout form from being sent twice.
(function () {
  "use strict";

  // The browser's token as it is now: signing in (in another tab too) gives it a new one, and
  // the token the page was rendered with is refused from then on.
  function csrfToken() {
    var cookie = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (cookie) return decodeURIComponent(cookie[1]);
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function formatCount(count) {
    document.querySelectorAll("[data-basket-count]").forEach(function (el) {
      el.textContent = String(count);
      el.setAttribute("aria-label", count + (count === 1 ? " item" : " items") + " in basket");
      el.classList.remove("bump");
      void el.offsetWidth;
      el.classList.add("bump");
    });
  }

  // The toast is a live region that stays in the page (empty, it takes no room), so what is
  // written into it is read out; it empties itself after a while, but not under the pointer or
  // the focus, which would otherwise fall back to the top of the page with its link.
  function showToast(html) {
    var toast = document.querySelector("[data-toast]");
    if (!toast) return;
    toast.innerHTML = html;
    toast.hidden = false; // a page rendered (and kept) before the toast stopped using `hidden`
    clearTimeout(showToast.timer);
    showToast.timer = setTimeout(function hide() {
      if (toast.matches(":hover, :focus-within")) {
        showToast.timer = setTimeout(hide, 2000);
      } else {
        toast.innerHTML = "";
      }
    }, 6000);
  }

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  document.querySelectorAll("[data-add-to-basket]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.fetch) return;
      event.preventDefault();
      var error = form.querySelector("[data-form-error]");
      var button = form.querySelector('button[type="submit"]');
      var quantity = parseInt(form.elements.quantity.value, 10);
      var product = form.elements.product.value;
      if (error) { error.hidden = true; error.textContent = ""; }
      // Disabled while it is sent, which takes the focus from it: it is given back after.
      var hadFocus = document.activeElement === button;
      button.disabled = true;
      fetch("/api/basket/items", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ product: product, quantity: quantity })
      }).then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (result) {
        if (result.ok) {
          formatCount(result.data.count);
          var title = document.querySelector("h1") ? document.querySelector("h1").textContent : "It";
          showToast("<span>Added " + quantity + " × " + escapeHtml(title) + ".</span> <a href=\"/basket/\">View basket</a>");
        } else if (error) {
          var fields = result.data.fields || {};
          var messages = [].concat(fields.quantity || [], fields.product || [], fields.body || []);
          if (result.data.error === "csrf_failed") {
            messages = ["This page is out of date: please reload it and add again."];
          } else if (!messages.length && result.data.detail) {
            messages = [result.data.detail];
          }
          error.textContent = messages.join(" ") || "That did not work. Please try again.";
          error.hidden = false;
        }
      }).catch(function () {
        form.submit();
      }).finally(function () {
        button.disabled = false;
        if (hadFocus && (document.activeElement === document.body || !document.activeElement)) button.focus();
      });
    });
  });

  // A checkout sent twice waits on its first try: asked quietly whether it is still being
  // placed, the page is reloaded only once it is not (a timed refresh, the page without
  // JavaScript, would restart a screen reader's reading every few seconds).
  var placing = document.querySelector("[data-checkout-placing]");
  if (placing) {
    var progressUrl = placing.getAttribute("data-progress-url");
    var every = 1000 * Number(placing.getAttribute("data-refresh-seconds") || 3);
    var look = function () {
      fetch(progressUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { placing: true }; })
        .catch(function () { return { placing: true }; })
        .then(function (answer) {
          if (answer.placing) setTimeout(look, every);
          else window.location.replace(progressUrl);
        });
    };
    setTimeout(look, every);
  }

  // A form shown again with errors: the first field in error takes the focus, so its label and
  // error are read out at once rather than after the whole page.
  var invalid = document.querySelector("main form [aria-invalid='true']");
  if (invalid && !window.location.hash) invalid.focus();

  document.querySelectorAll("[data-checkout-form]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("[data-submit-once]");
      if (button) {
        // Disabled after the browser has taken the click, so the form is still sent.
        setTimeout(function () { button.disabled = true; button.textContent = "Placing your order…"; }, 0);
      }
    });
  });
})();
