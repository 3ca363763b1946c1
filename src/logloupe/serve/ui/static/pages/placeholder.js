// Pages whose modules are still to come: say what will be here.
import { h } from "../lib/dom.js";

export function mount(root, ctx) {
  root.appendChild(h("div", { class: "page" },
    h("header", { class: "page-h" }, h("h1", {}, ctx.page.title)),
    h("div", { class: "soon-card" },
      h("div", { class: "soon-ico" }, ctx.page.icon),
      h("h2", {}, `${ctx.page.title} is coming`),
      h("p", {}, ctx.page.soon),
      h("a", { class: "btn", href: "/app/discover" }, "Explore logs in Discover"))));
}
