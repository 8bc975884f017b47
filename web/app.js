// The V5 demo page: plain JavaScript, same-origin calls to the public API only.
"use strict";

(function () {
  var API = "/api/v1/v5";
  var SVG = "http://www.w3.org/2000/svg";
  var FEEDBACK = ["like", "save", "skip", "dislike"];
  var state = {
    token: sessionStorage.getItem("v5.token"),
    user: sessionStorage.getItem("v5.user"),
    recommendation: null,
    weights: null,
    weightsBefore: null,
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // --- notices and errors -----------------------------------------------------------
  function notify(text, kind) {
    var box = $("notice");
    box.textContent = text;
    box.className = "notice" + (kind ? " " + kind : "");
    box.hidden = false;
  }
  function clearNotice() { $("notice").hidden = true; $("notice").textContent = ""; }

  function ApiError(status, detail, retryAfter) {
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }

  function describe(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map(function (d) { return (d && d.msg) || String(d); }).join("; ");
    }
    return "unexpected answer";
  }

  // Every failure ends here: nothing is left blank.
  function handle(error) {
    if (!(error instanceof ApiError)) {
      notify("Cannot reach the gateway: " + (error && error.message ? error.message : error) +
        ". Check that the cluster is running (make up) and try again.");
      return;
    }
    if (error.status === 401) {
      logout("Your session has ended or the token was refused: please log in again.");
    } else if (error.status === 429) {
      notify("Too many requests: please wait " + (error.retryAfter || "a few") +
        " second(s) and try again.", "wait");
    } else if (error.status === 503 || error.status === 502 || error.status === 504) {
      notify("The service is unavailable right now (" + error.status + "): " +
        describe(error.detail) + ". Please try again in a moment.");
    } else {
      notify("Request failed (" + error.status + "): " + describe(error.detail));
    }
  }

  // --- the API ------------------------------------------------------------------------
  function api(method, path, body, anonymous) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (!anonymous && state.token) headers["Authorization"] = "Bearer " + state.token;
    return fetch(API + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!response.ok) {
          throw new ApiError(response.status, data && data.detail !== undefined ? data.detail
            : response.statusText || "error", response.headers.get("Retry-After"));
        }
        return data;
      });
    });
  }

  function userPath(prefix, suffix) {
    return prefix + encodeURIComponent(state.user) + (suffix || "");
  }

  // --- login ----------------------------------------------------------------------------
  function showLogin(message) {
    $("app-view").hidden = true;
    $("who").hidden = true;
    $("login-view").hidden = false;
    var msg = $("login-message");
    msg.textContent = message || "";
    msg.className = "message";
    $("user-id").focus();
  }

  function showApp() {
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    $("who").hidden = false;
    $("who-name").textContent = "Signed in as " + state.user;
    $("chat-input").focus();
    refreshStatus();
  }

  function logout(message) {
    sessionStorage.removeItem("v5.token");
    sessionStorage.removeItem("v5.user");
    state.token = null;
    state.recommendation = null;
    state.weights = null;
    state.weightsBefore = null;
    clearNotice();
    clear($("chat-log"));
    clear($("tracks"));
    $("rec-meta").textContent = "";
    showLogin(message);
  }

  function credentials() {
    var user = $("user-id").value.trim();
    var password = $("password").value;
    if (!/^[A-Za-z0-9_.-]{3,64}$/.test(user)) {
      throw new Error("The user name must be 3–64 letters, digits, dot, dash or underscore.");
    }
    if (password.length < 8 || password.length > 128) {
      throw new Error("The password must be 8 to 128 characters.");
    }
    return { user_id: user, password: password };
  }

  function signIn(register) {
    var body;
    var msg = $("login-message");
    try { body = credentials(); } catch (e) { msg.textContent = e.message; return; }
    clearNotice();
    msg.className = "message ok";
    msg.textContent = register ? "Creating your account…" : "Logging in…";
    var first = register ? api("POST", "/auth/register", body, true) : Promise.resolve();
    first.then(function () {
      return api("POST", "/auth/token", body, true);
    }).then(function (token) {
      state.token = token.access_token;
      state.user = body.user_id;
      sessionStorage.setItem("v5.token", state.token);
      sessionStorage.setItem("v5.user", state.user);
      $("password").value = "";
      msg.textContent = "";
      showApp();
    }).catch(function (error) {
      msg.className = "message";
      if (error instanceof ApiError && error.status === 401) {
        msg.textContent = "Wrong user name or password.";
      } else if (error instanceof ApiError && error.status === 409) {
        msg.textContent = "That user name is taken: log in instead, or choose another.";
      } else if (error instanceof ApiError && error.status === 422) {
        msg.textContent = "Not accepted: " + describe(error.detail);
      } else {
        msg.textContent = "Could not sign in.";
        handle(error);
      }
    });
  }

  // --- conversation -------------------------------------------------------------------
  function say(who, text) {
    var item = el("li", { "class": who === "you" ? "you" : "bot" });
    item.appendChild(el("span", { "class": "who-said" }, who === "you" ? "You" : "V5"));
    item.appendChild(document.createTextNode(text));
    $("chat-log").appendChild(item);
    $("chat-log").scrollTop = $("chat-log").scrollHeight;
  }

  function names(list) {
    if (!list || !list.length) return "—";
    return list.map(function (x) { return typeof x === "string" ? x : x.name; }).join(", ");
  }

  function showUnderstanding(answer) {
    var ctx = answer.context || {};
    var ent = answer.entities || {};
    $("u-artists").textContent = names(ent.artists && ent.artists.length ? ent.artists : ctx.artists);
    $("u-genres").textContent = names(ent.genres && ent.genres.length ? ent.genres : ctx.genres);
    $("u-moods").textContent = names(ent.moods && ent.moods.length ? ent.moods : ctx.moods);
    $("u-activity").textContent = answer.activity || "—";
    $("u-mood").textContent = answer.mood
      ? answer.mood.label + " (valence " + answer.mood.valence.toFixed(2) + ", arousal " +
        answer.mood.arousal.toFixed(2) + ")"
      : "—";
    var clarity = Math.max(0, Math.min(1, answer.clarity || 0));
    $("u-clarity").textContent = Math.round(clarity * 100) + " %";
    $("u-clarity").setAttribute("data-value", clarity.toFixed(3));
    $("u-clarity-bar").style.width = Math.round(clarity * 100) + "%";
  }

  function sendMessage(event) {
    event.preventDefault();
    var input = $("chat-input");
    var message = input.value.trim();
    if (!message) return;
    var button = $("chat-send");
    button.disabled = true;
    clearNotice();
    say("you", message);
    input.value = "";
    api("POST", "/conversation/continue", { user_id: state.user, message: message })
      .then(function (answer) {
        say("bot", answer.reply);
        showUnderstanding(answer);
        return refreshStatus();
      })
      .catch(handle)
      .then(function () { button.disabled = false; input.focus(); });
  }

  // --- recommendations ------------------------------------------------------------------
  function recommend() {
    clearNotice();
    var button = $("recommend");
    button.disabled = true;
    return api("POST", "/recommendation/adaptive", { user_id: state.user, limit: 5 })
      .then(showRecommendation)
      .then(refreshStatus)
      .catch(handle)
      .then(function () { button.disabled = false; });
  }

  function showRecommendation(rec) {
    state.recommendation = rec;
    var meta = $("rec-meta");
    clear(meta);
    meta.setAttribute("data-strategy", rec.strategy);
    meta.setAttribute("data-recommendation-id", rec.recommendation_id);
    meta.setAttribute("data-comfort", rec.comfort_boost ? "true" : "false");
    meta.appendChild(document.createTextNode("Chosen by the "));
    meta.appendChild(el("span", { "class": "badge arm", id: "rec-arm" }, rec.strategy));
    meta.appendChild(document.createTextNode(" arm. "));
    meta.appendChild(el("span", { "class": "badge comfort", id: "rec-comfort" },
      rec.comfort_boost ? "Comfort applied" : "No comfort needed"));
    if (rec.cold_start) meta.appendChild(document.createTextNode(" Cold start: popular tracks."));
    var list = $("tracks");
    clear(list);
    rec.tracks.forEach(function (track) {
      var item = el("li", { "class": "track", "data-track-id": track.track_id });
      item.appendChild(el("div", { "class": "title" }, track.title));
      item.appendChild(el("div", { "class": "sub" }, track.artist + " · " +
        (track.genres || []).join(", ") + " · score " + track.score.toFixed(2)));
      var reasons = el("ul", { "class": "reasons", "aria-label": "Why this track" });
      (track.reasons || []).forEach(function (r) { reasons.appendChild(el("li", {}, r)); });
      item.appendChild(reasons);
      var actions = el("div", { "class": "actions", role: "group",
        "aria-label": "Feedback on " + track.title });
      FEEDBACK.forEach(function (kind) {
        var b = el("button", { type: "button", "class": "secondary fb-" + kind,
          "data-feedback": kind, "aria-label": kind + " " + track.title }, kind);
        b.addEventListener("click", function () { feedback(track, kind, item); });
        actions.appendChild(b);
      });
      item.appendChild(actions);
      list.appendChild(item);
    });
  }

  function feedback(track, kind, item) {
    var rec = state.recommendation;
    if (!rec) return;
    clearNotice();
    var buttons = item.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    var reward;
    api("POST", "/feedback/reward", {
      user_id: state.user, recommendation_id: rec.recommendation_id,
      track_id: track.track_id, event: kind,
    }).then(function (answer) {
      reward = answer;
      return api("POST", userPath("/learning/weights/"), {
        action: "feedback", track_id: track.track_id, feedback: kind,
      });
    }).then(function (weights) {
      showWeights(weights.weights, weights.adjustment_count);
      var sent = item.querySelector(".sent") || el("span", { "class": "sent", role: "status" });
      sent.textContent = kind + " sent: reward " + reward.reward.toFixed(2) + " for the " +
        reward.strategy + " arm";
      item.querySelector(".actions").appendChild(sent);
      item.setAttribute("data-feedback-sent", kind);
      return refreshStatus();
    }).catch(handle).then(function () {
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
    });
  }

  // --- session status: trajectory, weights, arms ---------------------------------------
  function refreshStatus() {
    if (!state.token) return Promise.resolve();
    return api("GET", userPath("/session/", "/status")).then(function (status) {
      drawTrajectory(status.trajectory || { trend: "unknown", points: [] });
      showWeights(status.weights, status.adjustment_count);
      showArms(status.bandit || {});
      var r = status.rewards || {};
      $("rewards").textContent = "Rewards: " + (r.count || 0) + " event(s)" +
        (r.mean === null || r.mean === undefined ? "" : ", mean " + r.mean.toFixed(2));
    }).catch(handle);
  }

  function drawTrajectory(trajectory) {
    var points = trajectory.points || [];
    var trend = $("trend");
    trend.setAttribute("data-trend", trajectory.trend);
    trend.setAttribute("data-points", String(points.length));
    trend.textContent = "Trend: " + trajectory.trend + " (" + points.length + " point" +
      (points.length === 1 ? "" : "s") + (points.length > 1 ? ", valence slope " +
      Number(trajectory.valence_slope || 0).toFixed(2) : "") + ")";
    var plane = $("plane");
    Array.prototype.slice.call(plane.childNodes).forEach(function (n) {
      if (n.nodeName !== "title" && n.nodeName !== "desc") plane.removeChild(n);
    });
    var lo = 20, hi = 220, mid = 120;
    function x(v) { return mid + v * (hi - lo) / 2; }
    function y(a) { return mid - a * (hi - lo) / 2; }
    plane.appendChild(svg("rect", { "class": "frame", x: lo, y: lo, width: hi - lo, height: hi - lo }));
    plane.appendChild(svg("line", { "class": "axis", x1: lo, y1: mid, x2: hi, y2: mid }));
    plane.appendChild(svg("line", { "class": "axis", x1: mid, y1: lo, x2: mid, y2: hi }));
    plane.appendChild(svg("text", { x: hi, y: mid - 4, "text-anchor": "end" }, "pleasant →"));
    plane.appendChild(svg("text", { x: lo + 2, y: mid - 4 }, "← unpleasant"));
    plane.appendChild(svg("text", { x: mid + 4, y: lo + 10 }, "energetic"));
    plane.appendChild(svg("text", { x: mid + 4, y: hi - 4 }, "calm"));
    if (points.length > 1) {
      plane.appendChild(svg("polyline", { "class": "path", points: points.map(function (p) {
        return x(p.valence).toFixed(1) + "," + y(p.arousal).toFixed(1);
      }).join(" ") }));
    }
    points.forEach(function (p, i) {
      var c = svg("circle", { "class": "pt" + (i === points.length - 1 ? " last" : ""),
        cx: x(p.valence).toFixed(1), cy: y(p.arousal).toFixed(1), r: 4,
        "data-valence": p.valence, "data-arousal": p.arousal });
      c.appendChild(svg("title", {}, "Turn " + p.turn + ": valence " + p.valence.toFixed(2) +
        ", arousal " + p.arousal.toFixed(2)));
      plane.appendChild(c);
      plane.appendChild(svg("text", { x: (x(p.valence) + 6).toFixed(1),
        y: (y(p.arousal) - 6).toFixed(1) }, String(p.turn)));
    });
  }

  function showWeights(weights, count) {
    if (!weights) return;
    var previous = state.weights || {};
    var names = Object.keys(weights).sort();
    var changed = names.some(function (n) {
      return previous[n] !== undefined && Math.abs(previous[n] - weights[n]) >= 1e-9;
    });
    // The same weights again (a status refresh after feedback) keep the last change shown.
    if (!changed && state.weightsBefore) previous = state.weightsBefore;
    else state.weightsBefore = previous;
    state.weights = weights;
    var chart = $("weights");
    clear(chart);
    var row = 22, labelW = 130, barW = 200, width = labelW + barW + 50;
    chart.setAttribute("viewBox", "0 0 " + width + " " + (names.length * row + 4));
    names.forEach(function (name, i) {
      var value = weights[name];
      var before = previous[name];
      var top = i * row + 4;
      chart.appendChild(svg("text", { x: 0, y: top + 13 }, name.replace(/_/g, " ")));
      chart.appendChild(svg("rect", { "class": "track-bg", x: labelW, y: top + 3, width: barW, height: 12, rx: 2 }));
      var moved = before === undefined || Math.abs(before - value) < 1e-9 ? ""
        : (value > before ? " up" : " down");
      var bar = svg("rect", { "class": "bar" + moved, x: labelW, y: top + 3,
        width: (Math.max(0, Math.min(1, value)) * barW).toFixed(1), height: 12, rx: 2,
        "data-weight": name, "data-value": value.toFixed(6) });
      bar.appendChild(svg("title", {}, name + ": " + value.toFixed(3)));
      chart.appendChild(bar);
      chart.appendChild(svg("text", { x: labelW + barW + 6, y: top + 13 }, value.toFixed(2)));
    });
    $("weights-meta").textContent = (count || 0) + " adjustment(s) so far" +
      (Object.keys(previous).length ? "; green moved up, red moved down." : ".");
  }

  function showArms(bandit) {
    var body = $("arms").querySelector("tbody");
    clear(body);
    var total = 0;
    var chosen = state.recommendation && state.recommendation.strategy;
    Object.keys(bandit).sort().forEach(function (arm) {
      var a = bandit[arm].alpha, b = bandit[arm].beta, n = a + b;
      total += n;
      var mean = a / n;
      var sd = Math.sqrt(a * b / (n * n * (n + 1)));
      var tr = el("tr", { "data-arm": arm, "data-mean": mean.toFixed(4), "class": arm === chosen ? "chosen" : "" });
      tr.appendChild(el("td", {}, arm + (arm === chosen ? " (chose the list)" : "")));
      tr.appendChild(el("td", {}, mean.toFixed(3)));
      tr.appendChild(el("td", {}, "± " + sd.toFixed(3)));
      tr.appendChild(el("td", {}, bandit[arm].pulls));
      body.appendChild(tr);
    });
    $("arms").setAttribute("data-total", total.toFixed(4));
  }

  // --- wiring -------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", function () {
    $("login-form").addEventListener("submit", function (e) { e.preventDefault(); signIn(false); });
    $("register-button").addEventListener("click", function () { signIn(true); });
    $("logout").addEventListener("click", function () { logout("You are logged out."); });
    $("chat-form").addEventListener("submit", sendMessage);
    $("recommend").addEventListener("click", recommend);
    $("refresh").addEventListener("click", function () {
      var work = state.recommendation ? recommend() : refreshStatus();
      return work;
    });
    window.addEventListener("unhandledrejection", function (e) { handle(e.reason); });
    if (state.token && state.user) showApp(); else showLogin("");
  });
})();
