import * as assert from 'node:assert/strict';
import { renderMarkdown } from '../../src/core/markdown';

/** Text of every <math> element's TeX annotation, in order. */
function texOf(html: string): string[] {
  return [...html.matchAll(/<annotation encoding="application\/x-tex">([\s\S]*?)<\/annotation>/g)].map((m) => m[1]!.trim());
}

describe('renderMarkdown', () => {
  it('renders headings, lists, emphasis and tables', () => {
    const html = renderMarkdown('# Task\n\n## Scoring\n\n- *fast*\n- **correct**\n\n| a | b |\n|--:|:-:|\n| 1 | 2 |\n');
    assert.match(html, /<h1>Task<\/h1>/);
    assert.match(html, /<h2>Scoring<\/h2>/);
    assert.match(html, /<li><em>fast<\/em><\/li>/);
    assert.match(html, /<strong>correct<\/strong>/);
    // Alignment as a class: the panel's CSP blocks style attributes.
    assert.match(html, /<th class="align-right">a<\/th>/);
    assert.doesNotMatch(html, /style=/);
  });

  it('keeps code blocks and inline code literal, math included', () => {
    const html = renderMarkdown('```python\nprice = "$x$"  # $$y$$ \\(z\\)\n```\n\nUse `$HOME/$USER` here.\n\n    $$ indented code $$\n');
    assert.match(html, /<pre><code class="language-python">price = &quot;\$x\$&quot;  # \$\$y\$\$ \\\(z\\\)\n<\/code><\/pre>/);
    assert.match(html, /<code>\$HOME\/\$USER<\/code>/);
    assert.match(html, /<pre><code>\$\$ indented code \$\$\n<\/code><\/pre>/);
    assert.doesNotMatch(html, /<math/);
  });

  it('renders inline math $...$ and \\(...\\) to MathML', () => {
    const html = renderMarkdown('The loss $L = -\\log p$ and \\(x^2\\) matter.');
    assert.deepEqual(texOf(html), ['L = -\\log p', 'x^2']);
    assert.equal((html.match(/<math /g) ?? []).length, 2);
    assert.doesNotMatch(html, /display="block"/);
    assert.doesNotMatch(html, /class="katex-html"/, 'MathML only: no HTML rendering that would need KaTeX fonts');
  });

  it('renders display math $$...$$ and \\[...\\] as blocks, on one line or several', () => {
    const html = renderMarkdown('Before.\n\n$$\n\\sum_{i=1}^n x_i\n$$\n\n\\[ E = mc^2 \\]\n\n$$a+b$$\n');
    assert.deepEqual(texOf(html), ['\\sum_{i=1}^n x_i', 'E = mc^2', 'a+b']);
    assert.equal((html.match(/<div class="math-block">/g) ?? []).length, 3);
    assert.equal((html.match(/display="block"/g) ?? []).length, 3);
    assert.match(html, /<p>Before\.<\/p>/);
  });

  it('leaves prices alone: "costs $5 and $10" stays text', () => {
    for (const text of ['It costs $5 and $10 per hour.', 'Between $5 and $ 10', 'A $ sign and another $ sign', 'Pay $3.50, or $4 with tax.']) {
      const html = renderMarkdown(text);
      assert.doesNotMatch(html, /<math/, text);
      assert.equal(html, `<p>${text}</p>\n`);
    }
  });

  it('shows TeX errors as text instead of failing', () => {
    const html = renderMarkdown('Broken $\\frac{1}{$ math.');
    assert.doesNotMatch(html, /<script/);
    assert.ok(html.includes('Broken'));
  });

  it('escapes raw HTML: <script> and <img onerror> show as text', () => {
    const html = renderMarkdown('<script>alert(1)</script>\n\nHello <img src=x onerror=alert(2)> <b>bold</b>\n\n<div onclick="x()">block</div>');
    assert.doesNotMatch(html, /<script/);
    assert.doesNotMatch(html, /<img/);
    assert.doesNotMatch(html, /<div onclick/);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(html, /&lt;img src=x onerror=alert\(2\)&gt;/);
    assert.match(html, /&lt;b&gt;bold&lt;\/b&gt;/);
  });

  it('makes only http(s) and mailto links; javascript: and data: links are not links', () => {
    const html = renderMarkdown(
      '[ok](https://example.org/a) [mail](mailto:org@example.org) [js](javascript:alert(1)) [JS](JAVASCRIPT:alert(1)) [data](data:text/html;base64,PHNjcmlwdD4=) [vb](vbscript:x) [file](file:///etc/passwd) [rel](solution/train.py) <javascript:alert(3)>',
    );
    const hrefs = [...html.matchAll(/<a href="([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(hrefs, ['https://example.org/a', 'mailto:org@example.org']);
    assert.doesNotMatch(html, /href="(javascript|data|vbscript|file):/i);
    assert.match(html, /<span class="link-inert">rel<\/span>/, 'a relative link keeps its text');
  });

  it('links bare URLs, and only web ones', () => {
    const html = renderMarkdown('See https://example.org/docs and www.example.com, not javascript:alert(1).');
    assert.match(html, /<a href="https:\/\/example\.org\/docs"/);
    assert.match(html, /<a href="http:\/\/www\.example\.com"/);
    assert.doesNotMatch(html, /href="javascript/);
  });

  it('shows only inline data images; other images become their alt text', () => {
    const png = 'data:image/png;base64,iVBORw0KGgo=';
    const html = renderMarkdown(`![diagram](${png}) ![remote](https://example.org/x.png) ![svg](data:image/svg+xml;base64,PHN2Zz4=)`);
    assert.equal((html.match(/<img /g) ?? []).length, 1);
    assert.ok(html.includes(`<img src="${png}" alt="diagram">`));
    assert.match(html, /<span class="image-blocked">\[image: remote\]<\/span>/);
    // An SVG data URL is not an allowed link at all, so its source stays text.
    assert.ok(html.includes('![svg](data:image/svg+xml;base64,PHN2Zz4=)'));
  });

  it('cannot be tricked into markup through math', () => {
    const html = renderMarkdown('$<script>alert(1)</script>$ and $$\\href{javascript:alert(1)}{x}$$');
    assert.doesNotMatch(html, /<script/);
    assert.doesNotMatch(html, /href="javascript/);
  });
});
