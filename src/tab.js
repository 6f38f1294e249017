// Libero tab bootstrap (see src/tab.rs). Inlined in <head>: keep it small.
(function () {
  "use strict";
  var KEY = "libero.tab";
  var doc = document;
  var root = doc.documentElement;
  var store = null;
  try {
    store = window.sessionStorage;
    store.getItem(KEY);
  } catch (e) {
    store = null; // the browser blocks this site's storage
  }
  root.setAttribute("data-storage", store ? "ok" : "blocked");

  function read() {
    try {
      var value = JSON.parse(store.getItem(KEY));
      return value && typeof value.token === "string" && typeof value.tenant === "string" ? value : null;
    } catch (e) {
      return null;
    }
  }
  function write(value) {
    try {
      store.setItem(KEY, JSON.stringify(value));
    } catch (e) {}
  }
  function resume(token) {
    return fetch("/api/resume_tab", {
      method: "POST",
      credentials: "omit",
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/x-www-form-urlencoded" },
      body: "",
    }).then(function (response) {
      if (!response.ok) throw response.status;
      return response.json();
    });
  }
  // The tab's tenant (never a token) in window.name: it survives frame reloads where storage is
  // blocked, so a page answered for another winery's cookie is recognised.
  var HINT = "libero:";
  function hint() {
    var name = typeof window.name === "string" ? window.name : "";
    return name.indexOf(HINT) === 0 ? name.slice(HINT.length) : null;
  }
  function setHint(tenant) {
    try {
      window.name = HINT + tenant;
    } catch (e) {}
  }
  // Whether this frame may keep a (partitioned) cookie at all.
  function cookiesWork() {
    var probe = "libero_probe=1; Path=/; SameSite=None; Secure; Partitioned";
    try {
      doc.cookie = probe + "; Max-Age=10";
      var ok = doc.cookie.indexOf("libero_probe=1") >= 0;
      doc.cookie = probe + "; Max-Age=0";
      return ok;
    } catch (e) {
      return false;
    }
  }
  // The page again with a handoff code, its context (orderId, …) kept.
  function reloadWith(path, code) {
    var params = new URLSearchParams(location.search);
    params.set("handoff", code);
    location.replace(path + "?" + params.toString());
  }

  var stored = store ? read() : null;
  // Neither a handoff code nor the sign-in's account token stays in the address bar or history
  // (a sign-in answers with the page itself).
  var url = new URL(location.href);
  var once = ["handoff", "tenantId", "account", "adminUITheme"].filter(function (name) {
    return url.searchParams.has(name);
  });
  if (once.length) {
    once.forEach(function (name) {
      url.searchParams.delete(name);
    });
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }
  // A plain form's error (the __path, __err and __sig its answer brought) leaves the address once
  // the page has hydrated — the app has read it by then — so a reload does not show it again.
  if (url.searchParams.has("__err")) {
    new MutationObserver(function (records, observer) {
      if (!doc.body.hasAttribute("data-hydrated")) return;
      observer.disconnect();
      var clean = new URL(location.href);
      ["__path", "__err", "__sig"].forEach(function (name) {
        clean.searchParams.delete(name);
      });
      history.replaceState(history.state, "", clean.pathname + clean.search + clean.hash);
    }).observe(root, { attributes: true, subtree: true, attributeFilter: ["data-hydrated"] });
  }

  var meta = doc.querySelector('meta[name="libero-tab"]');
  if (meta) {
    var page = {
      token: meta.getAttribute("content"),
      tenant: meta.getAttribute("data-tenant"),
      theme: meta.getAttribute("data-theme"),
      expiresAt: Date.now() + 1000 * Number(meta.getAttribute("data-expires-in")),
      dead: false,
    };
    // Only a page the sign-in answered, or one opened by a handoff code (this tab's own resume),
    // may move the tab to its winery; a page answered from the cookie may not.
    var via = meta.getAttribute("data-via");
    var viaHandoff = via === "sign-in" || via === "handoff";
    var tabTenant = stored ? stored.tenant : hint();
    if (!viaHandoff && tabTenant && tabTenant !== page.tenant) {
      // The cookie belongs to another winery's tab: this tab stays on its own.
      root.style.visibility = "hidden";
      if (!stored) {
        // No stored token to resume with (storage blocked): say so instead.
        location.replace("/resume#other-winery");
        return;
      }
      if (stored.dead) {
        location.replace("/resume");
        return;
      }
      resume(stored.token).then(
        function (code) {
          reloadWith(location.pathname, code);
        },
        function (status) {
          // Only a refused token is dead; after an outage /resume tries once more.
          if (status === 401) {
            stored.dead = true;
            write(stored);
          }
          location.replace("/resume");
        },
      );
      return;
    }
    setHint(page.tenant);
    if (store) write(page);
    return;
  }

  // The "no session" page.
  function show(reason) {
    var section = doc.getElementById("no-session");
    if (!section) return;
    section.setAttribute("data-reason", reason);
    var parts = section.querySelectorAll("[data-when]");
    for (var i = 0; i < parts.length; i++) {
      parts[i].hidden = (" " + parts[i].getAttribute("data-when") + " ").indexOf(" " + reason + " ") < 0;
    }
  }
  // Whether `origin` matches one of the CSP sources in `list` as frame-ancestors does: same
  // scheme and port, and the same host, or for "*.base" a subdomain of base. Others: no.
  function allowed(origin, list) {
    try {
      var o = new URL(origin);
      return (list || "").split(" ").some(function (source) {
        var m = /^(https?:\/\/)(\*\.)?([^\/:*]+(:\d+)?)\/?$/.exec(source);
        if (!m) return false;
        var base = new URL(m[1] + m[3]);
        var host = m[2] ? o.hostname.slice(-base.hostname.length - 1) : o.hostname;
        return o.protocol === base.protocol && o.port === base.port && host === (m[2] ? "." : "") + base.hostname;
      });
    } catch (e) {
      return false;
    }
  }
  function ready() {
    // The admin's theme as the tab last knew it; else the system's.
    if (stored && stored.theme) doc.body.classList.add(stored.theme === "dark" ? "theme-dark" : "theme-light");
    // The way back: the Commerce7 admin this frame was opened in (its top-level origin), only
    // when FRAME_ANCESTORS allows it; never for a page that is not framed (any site can open it).
    var reopen = doc.getElementById("reopen");
    var admin = null;
    try {
      if (window.parent !== window) {
        var ancestors = location.ancestorOrigins;
        admin = ancestors ? ancestors[ancestors.length - 1] : new URL(doc.referrer).origin;
      }
    } catch (e) {}
    if (reopen && admin && admin !== location.origin && allowed(admin, reopen.getAttribute("data-frame-ancestors"))) {
      reopen.href = admin + "/";
      reopen.hidden = false;
    }
    if (location.hash === "#other-winery" && hint()) {
      // A winery's name only from this tab's own credential: anyone can set window.name.
      if (stored && stored.tenant === hint()) {
        var names = doc.querySelectorAll("[data-tab-tenant]");
        for (var i = 0; i < names.length; i++) names[i].textContent = stored.tenant;
      }
      return show("other");
    }
    // Without storage a reload cannot resume; that is worth saying only if cookies fail too.
    if (!store) return cookiesWork() ? undefined : show("blocked");
    if (!stored) return;
    if (stored.dead) return show("ended");
    show("resuming");
    var path = location.pathname === "/resume" ? "/app" : location.pathname;
    resume(stored.token).then(
      function (code) {
        reloadWith(path, code);
      },
      function (status) {
        if (status === 401) {
          stored.dead = true;
          write(stored);
          show("ended");
        } else {
          show("unavailable");
        }
      },
    );
  }
  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
