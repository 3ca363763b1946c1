// The pages of the UI. To add one: write pages/<slug>.js exporting
//   mount(root, ctx) → optional cleanup function
// (ctx: {params: URLSearchParams, navigate(path, params), setParams(params, replace)})
// and add a line here. The server serves the shell for every /app/<slug> path; nothing else to change.
export const PAGES = [
  { slug: "discover", title: "Discover", icon: "⌕", module: "./discover.js", key: "d" },
  { slug: "tail", title: "Live tail", icon: "▶", module: "./tail.js", key: "l" },
  { slug: "dashboard", title: "Dashboard", icon: "▦", module: "./dashboard.js", key: "b" },
  { slug: "patterns", title: "Patterns", icon: "◈", module: "./patterns.js", key: "p" },
  { section: "Analysis" },
  { slug: "anomalies", title: "Anomalies", icon: "⚡", module: "./anomalies.js" },
  { slug: "insights", title: "Insights", icon: "✦", module: "./insights.js" },
  { slug: "alerts", title: "Alerts", icon: "⚑", module: "./alerts.js" },
  { section: "Manage" },
  { slug: "sources", title: "Sources", icon: "⇲", module: "./sources.js" },
  { slug: "settings", title: "Settings", icon: "⚙", module: "./settings.js" },
];
