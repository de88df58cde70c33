/* The live sale dashboard: fetches its JSON every few seconds and redraws the figures, the
   tables and the uPlot charts in place; the server-rendered page stands without it. */
(function () {
  "use strict";
  const root = document.getElementById("dashboard");
  if (!root) return;
  const url = root.dataset.url;
  const every = 1000 * Number(root.dataset.refresh || 3);
  const minutesShown = Number(root.dataset.minutes || 5);
  const zone = root.dataset.timeZone || "UTC";
  const charts = {};
  // The lists this member of staff may open (readmodels.views._links_allowed): no link to a 403.
  const mayOpen = { consumerDeadLetters: !!root.dataset.linkConsumerDeadLetters, purchaseOrders: !!root.dataset.linkPurchaseOrders };

  // Dates as the admin writes them (config.admin_base.short_datetime), in the shop's time zone:
  // 30 Nov 14:05, the year only when it is not this one; 30 Nov 14:05:09 with seconds.
  const dateParts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone, year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  function parts(date) {
    const found = {};
    dateParts.formatToParts(date).forEach(function (p) { found[p.type] = p.value; });
    return found;
  }
  function shortDatetime(unixSeconds, withSeconds) {
    const p = parts(new Date(1000 * unixSeconds));
    const day = p.day + " " + p.month + (p.year === parts(new Date()).year ? "" : " " + p.year);
    return day + " " + p.hour + ":" + p.minute + (withSeconds ? ":" + p.second : "");
  }
  function isoSeconds(iso) { return Date.parse(iso) / 1000; }

  function text(value) { return value === null || value === undefined ? "—" : String(value); }
  function cell(value, link) {
    const td = document.createElement("td");
    if (link) { const a = document.createElement("a"); a.href = link; a.textContent = text(value); td.append(a); }
    else td.textContent = text(value);
    return td;
  }
  function rows(id, items, columns, empty) {
    const body = document.querySelector("#" + id + " tbody");
    if (!body) return;
    const out = items.map(function (item) {
      const tr = document.createElement("tr");
      columns(item).forEach(function (c) { tr.append(Array.isArray(c) ? cell(c[0], c[1]) : cell(c)); });
      if (item.alert) tr.className = "dash-alert";
      return tr;
    });
    if (!out.length) { const tr = document.createElement("tr"); const td = cell(empty); td.colSpan = 10; tr.append(td); out.push(tr); }
    body.replaceChildren.apply(body, out);
  }
  function get(data, path) { return path.split(".").reduce(function (o, k) { return o == null ? o : o[k]; }, data); }
  // Answers per second over the last ten seconds: steadier to read than the last second alone.
  function rate(list) {
    const recent = (list || []).slice(-10);
    const sum = recent.reduce(function (a, b) { return a + b; }, 0);
    return recent.length ? Math.round((10 * sum) / recent.length) / 10 : 0;
  }

  // Time axes dated as the tables are; `withSeconds` for a chart whose points are seconds apart.
  function chart(id, title, series, x, ys, parent, withSeconds) {
    let box = document.getElementById("chart-" + id);
    if (!box) {
      box = document.createElement("div");
      box.id = "chart-" + id;
      box.className = "dash-chart-box";
      const h = document.createElement("h3"); h.textContent = title; box.append(h);
      parent.append(box);
    }
    const width = Math.max(260, box.clientWidth - 18);
    if (!charts[id]) {
      const when = function (u, v) { return v == null ? "—" : shortDatetime(v, withSeconds); };
      const axes = [
        // Ticks far enough apart for their labels, at round times of the shop's zone.
        { stroke: "#888", space: withSeconds ? 110 : 90,
          values: function (u, splits) { return splits.map(function (v) { return when(u, v); }); } },
        { stroke: "#888" },
      ];
      if (series.some(function (s) { return s.scale === "$"; })) axes.push({ scale: "$", side: 1, size: 64, stroke: "#888", grid: { show: false } });
      const opts = { width: width, height: 180, series: [{ value: when }].concat(series), axes: axes,
        scales: { x: { time: true } }, legend: { live: false },
        tzDate: function (ts) { return uPlot.tzDate(new Date(1000 * ts), zone); } };
      charts[id] = new uPlot(opts, [x].concat(ys), box);
    } else {
      charts[id].setData([x].concat(ys));
      if (Math.abs(charts[id].width - width) > 20) charts[id].setSize({ width: width, height: 180 });
    }
  }

  function draw(data) {
    document.querySelectorAll("[data-k]").forEach(function (el) { el.textContent = text(get(data, el.dataset.k)); });
    rows("dash-sales", data.sales, function (s) {
      const a = data.answers[s.product] || {};
      return [s.title, s.remaining + " of " + s.allocated, s.reserved, s.sold, s.available,
        rate(a.accepted), rate(a.sold_out), rate(a.throttled),
        a.p50_ms == null ? "—" : a.p50_ms + " ms", a.p99_ms == null ? "—" : a.p99_ms + " ms"];
    }, "No product is on the hot path.");
    rows("dash-minutes", data.sales_per_minute.slice(-minutesShown).reverse(), function (m) {
      return [shortDatetime(isoSeconds(m.minute)), m.orders, m.units, m.revenue];
    }, "No orders in the last half hour.");
    ["supplier", "category"].forEach(function (kind) {
      rows("dash-top-" + kind, data.top_sellers[kind], function (t) { return [t.name, t.orders, t.units, t.revenue]; }, "No sales yet.");
    });
    rows("dash-low", data.low_stock.map(function (p) { return Object.assign({ alert: true }, p); }), function (p) {
      return [p.title, p.available, p.reorder_point];
    }, "Nothing below its reorder point.");
    rows("dash-reorders", data.reorders, function (po) {
      return [[po.reference, mayOpen.purchaseOrders && po.url], po.title, po.supplier, po.quantity, po.status];
    }, "No open purchase orders.");
    rows("dash-consumers", data.consumers, function (c) {
      return [c.consumer, c.behind, c.lag_seconds + " s",
        c.dead_letters && mayOpen.consumerDeadLetters
          ? [c.dead_letters, data.dead_letters.consumers_url + "&consumer=" + encodeURIComponent(c.consumer)] : c.dead_letters];
    }, "No consumers registered.");
    if (typeof uPlot === "undefined") return;
    const answersBox = document.getElementById("dash-answers-charts");
    data.sales.forEach(function (s) {
      const a = data.answers[s.product];
      if (!a) return;
      chart("answers-" + s.product, s.title + " — answers per second", [
        { label: "Accepted", stroke: "#2e9b4f", width: 2 },
        { label: "Sold out", stroke: "#c47f00", width: 2 },
        { label: "Throttled", stroke: "#ba2121", width: 2 },
      ], a.seconds, [a.accepted, a.sold_out, a.throttled], answersBox, true);
    });
    const m = data.sales_per_minute;
    chart("sales", "Orders and revenue per minute", [
      { label: "Orders", stroke: "#417690", width: 2 },
      { label: "Revenue ($)", stroke: "#79aec8", width: 2, scale: "$" },
    ], m.map(function (r) { return isoSeconds(r.minute); }),
    [m.map(function (r) { return r.orders; }), m.map(function (r) { return r.revenue_cents / 100; })],
    document.getElementById("dash-sales-chart"));
  }

  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) {
        draw(data);
        root.classList.add("dash-live"); root.classList.remove("dash-stale");
        document.getElementById("dash-updated").textContent =
          "Live · figures of " + shortDatetime(isoSeconds(data.generated_at), true) + " (" + zone + ")";
      })
      .catch(function () { root.classList.add("dash-stale"); root.classList.remove("dash-live"); })
      .finally(function () { setTimeout(refresh, every); });
  }
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) {
      const box = document.getElementById("chart-" + id);
      charts[id].setSize({ width: Math.max(260, box.clientWidth - 18), height: 180 });
    });
  });
  const first = document.getElementById("dash-data");
  if (first) draw(JSON.parse(first.textContent));
  setTimeout(refresh, every);
})();
