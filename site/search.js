/* capsule's search: loads a small manifest, then only the index shards and document
   chunks a query needs. Every index file is a script that calls capsuleSearch, so the
   search works from any static host and from file://, where fetch() is refused. */
(function () {
  "use strict";
  var root = document.body.getAttribute("data-root") || "";
  var base = root + "search/";
  var waiting = {};
  var loaded = {};
  var manifest = null;
  var shards = {};
  var chunks = {};

  function load(path, key) {
    if (loaded[key]) return loaded[key];
    loaded[key] = new Promise(function (resolve, reject) {
      waiting[key] = resolve;
      var s = document.createElement("script");
      s.src = base + path + (manifest ? "?v=" + manifest.version : "");
      s.async = true;
      s.onerror = function () { reject(new Error("cannot load " + path)); };
      document.head.appendChild(s);
    });
    return loaded[key];
  }
  function done(key, value) {
    if (waiting[key]) { waiting[key](value); delete waiting[key]; }
  }
  window.capsuleSearch = {
    manifest: function (m) { manifest = m; done("manifest", m); },
    shard: function (key, terms) { shards[key] = terms; done("t:" + key, terms); },
    docs: function (n, rows) { chunks[n] = rows; done("d:" + n, rows); }
  };

  var FOLD = { "à": "a", "á": "a", "â": "a", "ã": "a", "ä": "a", "å": "a", "ç": "c", "č": "c", "ć": "c",
    "è": "e", "é": "e", "ê": "e", "ë": "e", "ě": "e", "ę": "e", "ì": "i", "í": "i", "î": "i", "ï": "i", "ı": "i",
    "ñ": "n", "ń": "n", "ň": "n", "ò": "o", "ó": "o", "ô": "o", "õ": "o", "ö": "o", "ø": "o",
    "ù": "u", "ú": "u", "û": "u", "ü": "u", "ů": "u", "ý": "y", "ÿ": "y", "š": "s", "ś": "s", "ş": "s",
    "ž": "z", "ź": "z", "ż": "z", "ł": "l", "ř": "r" };
  var STOP = ["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it",
    "of", "on", "or", "that", "the", "this", "to", "with"];
  function tokens(text) {
    var out = [];
    var words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) || [];
    words.forEach(function (w) {
      var t = "";
      for (var i = 0; i < w.length; i++) t += FOLD[w[i]] || w[i];
      if ((t.length >= 2 || /^[0-9]+$/.test(t)) && STOP.indexOf(t) < 0) out.push(t);
    });
    return out;
  }
  function hex(text) {
    var bytes = new TextEncoder().encode(text), out = "";
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return out || "_";
  }
  function shardsFor(term, prefix) {
    var keys = manifest.shards, best = null, out = [];
    keys.forEach(function (k) {
      if (term.indexOf(k) === 0 && (best === null || k.length > best.length)) best = k;
      if (prefix && k.length > term.length && k.indexOf(term) === 0) out.push(k);
    });
    if (best !== null) out.push(best);
    return out;
  }
  function postings(term, prefix, keys) {
    var scores = {};
    keys.forEach(function (k) {
      var terms = shards[k] || {};
      Object.keys(terms).forEach(function (t) {
        if (t === term || (prefix && t.indexOf(term) === 0)) {
          var list = terms[t], doc = 0;
          for (var i = 0; i < list.length; i += 2) {
            doc = i === 0 ? list[0] : doc + list[i];
            var w = list[i + 1] * (t === term ? 2 : 1);
            scores[doc] = Math.max(scores[doc] || 0, w);
          }
        }
      });
    });
    return scores;
  }

  var form = document.getElementById("search-form");
  var input = document.getElementById("q");
  var status = document.getElementById("search-status");
  var results = document.getElementById("search-results");
  var generation = 0;

  function show(rows, total) {
    results.textContent = "";
    rows.forEach(function (row) {
      var li = document.createElement("li");
      li.className = "record-item";
      var a = document.createElement("a");
      a.className = "record-title";
      a.href = root + row[2];
      a.textContent = row[1];
      li.appendChild(a);
      if (row[4]) {
        var b = document.createElement("span");
        b.className = "badge draft";
        b.textContent = "Draft";
        li.appendChild(document.createTextNode(" "));
        li.appendChild(b);
      }
      var p = document.createElement("p");
      p.className = "facts";
      p.textContent = row[0] + " · " + row[3];
      li.appendChild(p);
      results.appendChild(li);
    });
    status.textContent = total === 0 ? "No record matches." :
      total + (total === 1 ? " record matches" : " records match") + (total > rows.length ? "; the best " + rows.length + " are shown." : ".");
  }

  function run(query) {
    var mine = ++generation;
    var terms = tokens(query);
    if (!terms.length) { results.textContent = ""; status.textContent = ""; return; }
    var lastIsPrefix = !/\s$/.test(query);
    status.textContent = "Searching…";
    load("manifest.js", "manifest").then(function () {
      var plans = terms.map(function (t, i) {
        var prefix = lastIsPrefix && i === terms.length - 1 && t.length >= 2;
        return { term: t, prefix: prefix, keys: shardsFor(t, prefix) };
      });
      var needed = [];
      plans.forEach(function (p) { p.keys.forEach(function (k) { if (needed.indexOf(k) < 0) needed.push(k); }); });
      return Promise.all(needed.map(function (k) { return load("t/" + hex(k) + ".js", "t:" + k); })).then(function () { return plans; });
    }).then(function (plans) {
      if (mine !== generation) return;
      var total = null;
      plans.forEach(function (p) {
        var s = postings(p.term, p.prefix, p.keys);
        if (total === null) { total = s; return; }
        var next = {};
        Object.keys(total).forEach(function (d) { if (s[d] !== undefined) next[d] = total[d] + s[d]; });
        total = next;
      });
      var docs = Object.keys(total || {}).map(Number);
      docs.sort(function (a, b) { return (total[b] - total[a]) || (a - b); });
      var top = docs.slice(0, 20);
      var need = [];
      top.forEach(function (d) { var c = Math.floor(d / manifest.chunk); if (need.indexOf(c) < 0) need.push(c); });
      return Promise.all(need.map(function (c) { return load("d/" + c + ".js", "d:" + c); })).then(function () {
        if (mine !== generation) return;
        var rows = top.map(function (d) { return (chunks[Math.floor(d / manifest.chunk)] || [])[d % manifest.chunk]; }).filter(Boolean);
        show(rows, docs.length);
      });
    }).catch(function (e) { status.textContent = "Search failed: " + e.message; });
  }

  if (form && input) {
    var q = new URLSearchParams(location.search).get("q") || "";
    input.value = q;
    if (q) run(q);
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        run(input.value);
        try {
          var url = new URL(location.href);
          url.searchParams.set("q", input.value);
          history.replaceState(null, "", url.toString());
        } catch (e) { /* file:// pages may not rewrite their address */ }
      }, 150);
    });
    form.addEventListener("submit", function (e) { e.preventDefault(); run(input.value); });
  }
})();
