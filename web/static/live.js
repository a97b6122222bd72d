// The live page's player: hls.js in low-latency mode (or the browser's own HLS), a quality
// menu with an audio-only choice, and the live's status pushed by the server.
(function () {
  "use strict";
  var box = document.getElementById("player");
  var video = document.getElementById("video");
  if (!box || !video) return;
  var playlist = box.dataset.playlist;
  var message = document.getElementById("player-message");
  var quality = document.getElementById("quality");
  var hls = null;

  function say(text) { if (message) message.textContent = text || ""; }

  // hls.js leaves an audio-only variant out of its levels when video variants exist: the
  // "audio only" choice plays the audio rendition's own playlist instead.
  var audioPlaylist = playlist.replace(/master\.m3u8$/, "audio/index.m3u8");
  var wanted = "-1";

  function start(source) {
    if (window.Hls && window.Hls.isSupported()) {
      if (hls) hls.destroy();
      // No liveSyncDuration(Count) here: hls.js lets either override the playlist's
      // PART-HOLD-BACK, which is what keeps a low-latency player 0.75 s from the live edge.
      hls = new window.Hls({ lowLatencyMode: true, backBufferLength: 30 });
      hls.on(window.Hls.Events.MANIFEST_PARSED, function () {
        quality.innerHTML = "";
        var auto = document.createElement("option");
        auto.value = "-1"; auto.textContent = box.dataset.labelAuto;
        quality.appendChild(auto);
        var videoLevels = source === audioPlaylist ? [] : hls.levels;
        videoLevels.forEach(function (level, index) {
          if (!level.height) return;
          var option = document.createElement("option");
          option.value = String(index);
          option.textContent = level.height + "p";
          quality.appendChild(option);
        });
        var audio = document.createElement("option");
        audio.value = "audio"; audio.textContent = box.dataset.labelAudio;
        quality.appendChild(audio);
        quality.value = wanted;
        quality.disabled = false;
        video.play().catch(function () {});
      });
      hls.on(window.Hls.Events.ERROR, function (_, data) {
        if (!data.fatal) return;
        box.dataset.fatal = data.type + ":" + data.details;
        say(box.dataset.error);
        if (data.type === window.Hls.ErrorTypes.NETWORK_ERROR) { setTimeout(function () { hls.startLoad(); }, 2000); }
        else if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) { hls.recoverMediaError(); }
      });
      hls.loadSource(source);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = source;
      quality.hidden = true;
    } else {
      say(box.dataset.error);
    }
  }

  var status = document.getElementById("live-status");
  var viewers = document.getElementById("live-viewers");
  if (window.EventSource) {
    var events = new EventSource("/live/" + box.dataset.slug + "/events");
    events.addEventListener("status", function (e) {
      var data = JSON.parse(e.data);
      box.dataset.status = data.status;
      if (status) status.textContent = status.dataset[data.status] || data.status;
      if (viewers && !viewers.dataset.fromChat) viewers.textContent = viewers.dataset.label.replace("{n}", data.viewers);
      if (data.status === "live" && !hls && !video.src) start(playlist);
      if (data.status === "ended") events.close();
    });
  }
  if (quality) {
    quality.addEventListener("change", function () {
      var before = wanted;
      wanted = quality.value;
      if (wanted === "audio") { start(audioPlaylist); return; }
      if (before === "audio") { start(playlist); return; }
      if (hls) hls.currentLevel = Number(wanted);
    });
  }
  if (box.dataset.status !== "waiting") start(playlist);
})();
