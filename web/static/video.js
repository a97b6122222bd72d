// A library video's page: hls.js plays the VOD (or the browser's own HLS); while the video is
// being made, its step and percentage are asked every second and the page reloads when done.
(function () {
  "use strict";
  var job = document.getElementById("job");
  if (job) {
    var step = document.getElementById("job-step");
    var bar = document.getElementById("job-progress");
    var percent = document.getElementById("job-percent");
    var names = {};
    var template = document.getElementById("step-names");
    if (template) {
      template.content.querySelectorAll("[data-step]").forEach(function (s) {
        names[s.dataset.step] = s.textContent;
      });
    }
    var poll = function () {
      fetch(job.dataset.status, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (!s) return;
          if (s.state !== "processing") { window.location.reload(); return; }
          var p = s.progress || 0;
          bar.value = p;
          percent.textContent = String(p);
          step.textContent = names[s.step || "queued"] || s.step;
        })
        .catch(function () {})
        .then(function () { setTimeout(poll, 1000); });
    };
    setTimeout(poll, 1000);
    return;
  }
  var box = document.getElementById("player");
  var video = document.getElementById("video");
  if (!box || !video) return;
  var playlist = box.dataset.playlist;
  var message = document.getElementById("player-message");
  if (window.Hls && window.Hls.isSupported()) {
    var hls = new window.Hls();
    hls.on(window.Hls.Events.ERROR, function (_, data) {
      if (!data.fatal) return;
      box.dataset.fatal = data.type + ":" + data.details;
      if (message) message.textContent = box.dataset.error;
      if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    });
    hls.loadSource(playlist);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = playlist;
  }
})();
