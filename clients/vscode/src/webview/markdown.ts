/**
 * Markdown for the chat, bundled into the webview (no remote resources). Model output is
 * untrusted: markdown-it runs with `html: false`, so raw HTML in it is escaped as text;
 * its link check drops `javascript:` and friends; code is highlighted by highlight.js,
 * which escapes what it does not mark up; and DOMPurify sanitizes the result once more
 * before it reaches `innerHTML`. Images are only inlined from `data:` URIs; any other
 * image becomes a link, so nothing is fetched.
 */

import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/common';
import MarkdownIt from 'markdown-it';

const md = new MarkdownIt({ html: false, linkify: true, typographer: false, breaks: false });

export function safeLanguage(info: string): string {
  const first = info.trim().split(/\s+/)[0] ?? '';
  return first.replace(/[^\w+#.-]/g, '').slice(0, 40);
}

md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx];
  const lang = safeLanguage(md.utils.unescapeAll(token.info || ''));
  const known = lang && hljs.getLanguage(lang) ? lang : '';
  const code = known
    ? hljs.highlight(token.content, { language: known, ignoreIllegals: true }).value
    : md.utils.escapeHtml(token.content);
  const label = md.utils.escapeHtml(lang || 'text');
  return (
    `<div class="code-block"><div class="code-header"><span class="code-lang">${label}</span>` +
    `<button type="button" class="copy" title="Copy code" aria-label="Copy code">Copy</button></div>` +
    `<pre><code class="hljs${known ? ` language-${known}` : ''}">${code}</code></pre></div>\n`
  );
};

md.renderer.rules.code_block = (tokens, idx) => {
  const code = md.utils.escapeHtml(tokens[idx].content);
  return (
    `<div class="code-block"><div class="code-header"><span class="code-lang">text</span>` +
    `<button type="button" class="copy" title="Copy code" aria-label="Copy code">Copy</button></div>` +
    `<pre><code class="hljs">${code}</code></pre></div>\n`
  );
};

md.renderer.rules.image = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  const src = token.attrGet('src') ?? '';
  const alt = self.renderInlineAsText(token.children ?? [], options, env);
  if (/^data:image\/(png|gif|jpeg|webp);base64,[a-z0-9+/=\s]*$/i.test(src)) {
    return `<img src="${md.utils.escapeHtml(src)}" alt="${md.utils.escapeHtml(alt)}">`;
  }
  // Not fetched: a remote image would be a remote resource.
  return `<a href="${md.utils.escapeHtml(src)}" class="image-link">${md.utils.escapeHtml(alt || src)}</a>`;
};

let purifyHooked = false;

function purify(html: string): string {
  if (!purifyHooked) {
    // Links open through the extension (which allows only web links); never in the webview.
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A') node.setAttribute('rel', 'noopener noreferrer');
    });
    purifyHooked = true;
  }
  return DOMPurify.sanitize(html, {
    FORBID_TAGS: ['style', 'form', 'input', 'textarea', 'select', 'iframe', 'object', 'embed', 'svg', 'math'],
    FORBID_ATTR: ['style', 'srcset', 'action', 'formaction'],
  });
}

/** Markdown → sanitized HTML. */
export function renderMarkdown(text: string): string {
  return purify(md.render(text));
}
