// Tiny DOM helpers. Text always goes in as text nodes, never as HTML.

/**
 * Creates an element: `h('td', {class: 'url', 'data-label': 'URL'}, 'text', child)`.
 * Attributes whose value is `false`, `null` or `undefined` are left out; `true` sets `""`.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Node | string | number | null | undefined | false)} children
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'object' ? child : String(child));
  }
  return el;
}

/** Sets `el.textContent` only when it changes (no layout work for an unchanged countdown). */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * Puts `children` into `parent` in this order with as few DOM moves as possible; children of
 * `parent` not in the list must have been removed already.
 * @param {Element} parent
 * @param {Element[]} children
 */
export function syncOrder(parent, children) {
  let cursor = parent.firstElementChild;
  for (const child of children) {
    if (child === cursor) {
      cursor = cursor.nextElementSibling;
    } else {
      parent.insertBefore(child, cursor);
    }
  }
}

/** Announces `message` to screen readers through a polite live region. */
export function announce(region, message) {
  if (!message) return;
  // Clearing first makes a repeated identical message be read again.
  region.textContent = '';
  requestAnimationFrame(() => {
    region.textContent = message;
  });
}
