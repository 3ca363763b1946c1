// Sign-in for the LogLoupe UI: POST /api/v1/auth/login, keep the access token where the UI reads it
// (localStorage["logloupe.token"]), then go back to ?next= (a path on this site only).
"use strict";

(function () {
  var TOKEN_KEY = "logloupe.token";
  var REFRESH_KEY = "logloupe.refresh";

  function safeNext() {
    var next = new URLSearchParams(window.location.search).get("next") || "/";
    // Only same-site paths: "/x" yes; "//evil", "/\\evil", "https://evil" no.
    if (next.charAt(0) !== "/" || next.charAt(1) === "/" || next.charAt(1) === "\\") {
      return "/";
    }
    return next;
  }

  function showError(text) {
    var el = document.getElementById("error");
    el.textContent = text; // textContent: server text is never parsed as HTML
    el.hidden = false;
  }

  function onSubmit(event) {
    event.preventDefault();
    var button = document.getElementById("submit");
    button.disabled = true;
    document.getElementById("error").hidden = true;
    fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      credentials: "omit",
      body: JSON.stringify({
        username: document.getElementById("username").value,
        password: document.getElementById("password").value
      })
    })
      .then(function (resp) {
        return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
      })
      .then(function (result) {
        if (!result.ok || !result.body.access_token) {
          var err = (result.body && result.body.error) || {};
          showError(err.message || "Sign-in failed");
          button.disabled = false;
          return;
        }
        window.localStorage.setItem(TOKEN_KEY, result.body.access_token);
        window.localStorage.setItem(REFRESH_KEY, result.body.refresh_token);
        window.location.assign(safeNext());
      })
      .catch(function () {
        showError("The server could not be reached");
        button.disabled = false;
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("login-form");
    if (form) {
      form.addEventListener("submit", onSubmit);
    }
    var cont = document.getElementById("continue");
    if (cont) {
      cont.setAttribute("href", safeNext());
    }
  });
})();
