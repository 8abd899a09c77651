import Hummingbird

/// The console's only style sheet and script, served by the binary: nothing is loaded from
/// anywhere else, so it works offline and the CSP can say `'self'`.
enum ConsoleAssets {
    static func response(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// Refreshes the fleet page in place: fetches the server-rendered (escaped) fragment and swaps
    /// it in; keeps the last good view and says so when a refresh fails.
    static let javascript = """
        "use strict";
        (function () {
          var main = document.getElementById("main");
          if (!main || !main.dataset.refresh) { return; }
          var every = Math.max(parseInt(main.dataset.refresh, 10) || 5000, 1000);
          function refresh() {
            fetch(main.dataset.fragment, { credentials: "same-origin", headers: { "Accept": "text/html" } })
              .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
              .then(function (html) { main.innerHTML = html; main.removeAttribute("data-stale"); })
              .catch(function () { main.setAttribute("data-stale", "true"); })
              .finally(function () { setTimeout(refresh, every); });
          }
          setTimeout(refresh, every);
        })();
        """

    static let css = """
        :root { --fg: #1d1f23; --muted: #5b6270; --bg: #fbfbfc; --line: #d9dce1; --accent: #1f5fbf; --bad: #b3261e; --ok: #1e7b34; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; padding: .6rem 1.2rem; border-bottom: 1px solid var(--line); background: #fff; }
        header nav { display: flex; gap: .9rem; }
        header nav a { color: var(--accent); text-decoration: none; padding: .15rem .2rem; }
        header nav a[aria-current] { font-weight: 600; border-bottom: 2px solid var(--accent); }
        a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
        a.skip { position: absolute; left: -999px; top: .4rem; background: #fff; padding: .3rem .6rem; border: 1px solid var(--line); z-index: 1; }
        a.skip:focus { left: .6rem; }
        main:focus { outline: none; }
        .schema { color: var(--muted); }
        .badge { background: #eef1f6; border: 1px solid var(--line); border-radius: 3px; padding: 0 .4rem; font-size: 13px; }
        main { padding: 1rem 1.2rem 3rem; max-width: 1400px; }
        main[data-stale]::before { content: "Refresh failed: showing the last good view."; display: block; color: var(--bad); margin-bottom: .5rem; }
        h1 { font-size: 1.4rem; margin: .2rem 0 .6rem; } h2 { font-size: 1.1rem; margin: 1.4rem 0 .4rem; }
        table { border-collapse: collapse; width: 100%; background: #fff; font-size: 14px; }
        caption { text-align: left; color: var(--muted); padding: .2rem 0; }
        th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { background: #f2f4f7; font-weight: 600; }
        code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 13px; }
        pre { background: #fff; border: 1px solid var(--line); padding: .6rem; overflow: auto; max-height: 32rem; white-space: pre-wrap; word-break: break-all; }
        .ok { color: var(--ok); } .bad, .error { color: var(--bad); } .warning { color: #8a5300; }
        .error-text { color: #6b1d18; }
        .summary, .legend { color: var(--muted); }
        form.filters, form.change, form.confirm { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: flex-end; margin: .6rem 0; padding: .6rem; background: #fff; border: 1px solid var(--line); }
        label { display: flex; flex-direction: column; font-size: 13px; color: var(--muted); }
        input, select { font: inherit; padding: .25rem .4rem; border: 1px solid #aab0bb; border-radius: 3px; color: var(--fg); }
        button { font: inherit; padding: .3rem .8rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 3px; cursor: pointer; }
        button.danger { background: var(--bad); border-color: var(--bad); }
        dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; background: #fff; border: 1px solid var(--line); padding: .6rem; }
        dl.fields dt { color: var(--muted); }
        nav.tabs { display: flex; gap: .8rem; } nav.tabs a[aria-current] { font-weight: 600; }
        ol.lanes { list-style: none; padding: 0; margin: 0; display: grid; grid-template-columns: repeat(32, minmax(1.6rem, 1fr)); gap: 2px; max-width: 1100px; }
        ol.lanes li { font-size: 10px; text-align: center; padding: .25rem 0; color: #fff; border-radius: 2px; }
        ol.lanes li.free { background: #fff; color: var(--muted); outline: 1px dashed #8a919c; }
        ol.lanes li.expired { color: #5c1410; background: repeating-linear-gradient(45deg, #f6d3d0, #f6d3d0 3px, #fff 3px, #fff 6px); outline: 1px solid var(--bad); }
        .swatch { display: inline-block; width: .9rem; height: .9rem; border-radius: 2px; }
        .o0 { background: #1f5fbf; } .o1 { background: #c2571a; } .o2 { background: #2e7d32; } .o3 { background: #7b3fa0; }
        .o4 { background: #00838f; } .o5 { background: #ad1457; } .o6 { background: #5d6b00; } .o7 { background: #4e342e; }
        svg.chart { width: 100%; max-width: 720px; height: 120px; background: #fff; border: 1px solid var(--line); }
        svg.chart rect { fill: var(--accent); }
        """
}
