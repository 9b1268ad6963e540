import * as assert from 'node:assert/strict';
import { DASHES, PALETTE, escapeXml, plotModel, progressSteps, renderPlot } from '../../src/organiser/plot';
import { entries, host } from '../support/organiserFixtures';
import type { RecordsReply } from '../../src/core/participantProtocol';

/** The elements of one kind with their attributes, read from the SVG text. */
function elements(svg: string, tag: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const m of svg.matchAll(new RegExp(`<${tag}((?:\\s+[a-zA-Z-]+="[^"]*")*)\\s*/?>`, 'g'))) {
    const attrs: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/([a-zA-Z-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    out.push(attrs);
  }
  return out;
}

/** The SVG text of one panel. */
function panel(svg: string, env: string): string {
  const start = svg.indexOf(`<g class="panel" data-environment="${env}"`);
  assert.ok(start >= 0, `panel ${env}`);
  const next = svg.indexOf('<g class="panel"', start + 10);
  return svg.slice(start, next > 0 ? next : undefined);
}

/** Every tag opened is closed, in order: a cheap well-formedness check. */
function assertBalanced(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    if (m[3] === '/') continue;
    if (m[1] === '/') assert.equal(stack.pop(), m[2], `closing ${m[2]}`);
    else stack.push(m[2]!);
  }
  assert.deepEqual(stack, []);
}

describe('organiser plot', () => {
  describe('progressSteps', () => {
    const runs = entries([
      { h: 1, score: 3 },
      { h: 2, score: 5 },
      { h: 3, score: null },
      { h: 4, score: 4 },
      { h: 8.2, score: 9, counts: false },
    ]);

    it('follows the best score so far where the best counts, skipping no-score runs and late runs', () => {
      assert.deepEqual(progressSteps(runs, 'higher', 'best'), [
        { elapsedS: 3600, score: 3 },
        { elapsedS: 7200, score: 5 },
      ]);
      assert.deepEqual(progressSteps(runs, 'lower', 'best'), [{ elapsedS: 3600, score: 3 }]);
    });

    it('follows every scored run where the last one counts', () => {
      assert.deepEqual(
        progressSteps(runs, 'higher', 'last').map((s) => s.score),
        [3, 5, 4],
      );
    });
  });

  describe('plotModel', () => {
    it('makes one panel per environment, each with its own line styles', () => {
      const model = plotModel(
        [
          host(0, 'ann', { id: 'env-b' }, [{ h: 1, score: 3 }]),
          host(1, 'bea', { id: 'env-a' }, [{ h: 1, score: 6 }]),
          host(2, 'ann', { id: 'env-a' }, [{ h: 2, score: 2 }]),
          host(3, 'cat', null, [], { error: 'refused' }),
        ],
        'now',
      );
      assert.deepEqual(
        model.panels.map((p) => [p.environment, p.series.map((s) => s.participant)]),
        [
          ['env-a', ['bea', 'ann']],
          ['env-b', ['ann']],
        ],
      );
      // Every panel starts with the first colour: its legend is its own.
      assert.equal(model.panels[0]!.series[0]!.colour, PALETTE[0]);
      assert.equal(model.panels[0]!.series[1]!.colour, PALETTE[1]);
      assert.equal(model.panels[1]!.series[0]!.colour, PALETTE[0]);
      assert.deepEqual(model.missing, ['cat (agent@10.0.0.1:25): refused']);
    });

    it('carries each line to the end of the session, or to now while it runs', () => {
      const model = plotModel(
        [host(0, 'ann', { id: 'env-a' }, [{ h: 1, score: 3 }]), host(1, 'bea', { id: 'env-a' }, [{ h: 1, score: 3 }], { state: 'running', elapsedH: 2.5 })],
        'now',
      );
      assert.deepEqual(
        model.panels[0]!.series.map((s) => [s.endS, s.running]),
        [
          [8 * 3600, false],
          [2.5 * 3600, true],
        ],
      );
    });

    it('gives participants beyond the palette a dash pattern, so no two share a style', () => {
      const hosts = Array.from({ length: PALETTE.length + 2 }, (_, i) => host(i, `p${i}`, { id: 'env-a' }, [{ h: 1, score: i }]));
      const styles = plotModel(hosts, 'now').panels[0]!.series.map((s) => `${s.colour} ${s.dash}`);
      assert.equal(new Set(styles).size, styles.length);
      assert.equal(plotModel(hosts, 'now').panels[0]!.series[PALETTE.length]!.dash, DASHES[1]);
    });
  });

  describe('renderPlot', () => {
    const hosts = [
      host(0, 'ann', { id: 'env-a', title: 'Optimise a kernel' }, [
        { h: 0.5, score: 2 },
        { h: 3, score: 6 },
        { h: 6, score: 9 },
      ]),
      host(
        1,
        'bea',
        { id: 'env-a', title: 'Optimise a kernel' },
        [
          { h: 1, score: 4 },
          { h: 2, score: 12 },
        ],
        { integrity: 'broken', detail: 'line 1: hash does not match its contents (edited?)' },
      ),
      host(2, 'cat <&> "x"', { id: 'env-b', direction: 'lower', aggregation: 'last', starting: 5, reference: 1, title: 'Scaling law' }, [
        { h: 1, score: 4 },
        { h: 7, score: 3 },
      ]),
      host(3, 'dan', null, [], { error: 'dan@10.0.0.1:25 refused the connection' }),
    ];
    const svg = renderPlot(plotModel(hosts, '2025-03-01T18:00:00.000Z'));

    it('is a standalone, well-formed SVG with a white background', () => {
      assert.ok(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'));
      assertBalanced(svg);
      const root = elements(svg, 'svg')[0]!;
      assert.match(root.viewBox ?? '', /^0 0 \d+(\.\d)? \d+(\.\d)?$/);
      assert.equal(elements(svg, 'rect')[0]!.fill, '#fff');
    });

    it('has one panel per environment, a line per participant in it and a legend entry for each', () => {
      assert.equal(elements(svg, 'g').filter((g) => g.class === 'panel').length, 2);
      const a = panel(svg, 'env-a');
      assert.deepEqual(
        elements(a, 'g')
          .filter((g) => g.class === 'series')
          .map((g) => g['data-participant']),
        ['ann', 'bea'],
      );
      assert.deepEqual(
        elements(a, 'g')
          .filter((g) => g.class === 'legend-item')
          .map((g) => g['data-participant']),
        ['bea', 'ann'],
      ); // best first
      assert.match(a, /Optimise a kernel \(env-a\)/);
      assert.match(a, /raw score: higher is better, the best counts; starting 0, reference 10/);
      const b = panel(svg, 'env-b');
      assert.match(b, /lower is better, the last counts/);
      assert.equal(elements(b, 'g').filter((g) => g.class === 'series').length, 1);
    });

    it('draws step lines in hours, best so far where the best counts', () => {
      const a = panel(svg, 'env-a');
      const xTicks = [...a.matchAll(/class="x-tick">([^<]*)</g)].map((m) => m[1]);
      assert.deepEqual(xTicks, ['0', '1', '2', '3', '4', '5', '6', '7', '8']);
      const annPath = elements(a, 'path').find((p) => p.d?.startsWith('M') && p.fill === 'none' && p['stroke-width'] === '2');
      assert.ok(annPath);
      // three improvements: a start, then two horizontal-then-vertical steps, then held to 8 h
      assert.equal((annPath.d!.match(/H/g) ?? []).length, 3);
      assert.equal((annPath.d!.match(/V/g) ?? []).length, 2);
      assert.match(a, /class="level starting"/);
      assert.match(a, /class="level reference"/);
      assert.match(a, /class="x-title">session time \(hours, pauses excluded\)</);
    });

    it('flags a log that failed verification in the legend and on the line', () => {
      const a = panel(svg, 'env-a');
      const bea = a.slice(a.indexOf('<g class="legend-item" data-participant="bea"'));
      assert.match(bea, /^<g class="legend-item" data-participant="bea" data-integrity="broken">/);
      assert.match(bea.slice(0, 800), /⚠ score log NOT intact/);
      assert.match(a, /<g class="series" data-participant="bea" data-integrity="broken">/);
      assert.match(a, /<text [^>]*class="line-warning" data-participant="bea">⚠ log not intact<\/text>/);
      assert.doesNotMatch(a, /class="line-warning" data-participant="ann"/);
      assert.match(a, /<g class="legend-item" data-participant="ann" data-integrity="intact">/);
      assert.doesNotMatch(a.slice(a.indexOf('data-participant="ann" data-integrity="intact">')).slice(0, 600), /NOT intact/);
    });

    it('says in the legend when a participant gave up, from the session record', () => {
      const record = {
        index: 0,
        kind: 'give_up',
        time: 'then',
        elapsed_s: 7.5 * 3600,
        prev_hash: '0'.repeat(64),
        hash: '1'.repeat(64),
        reason: 'stuck',
        choice: null,
      };
      const records = { intact: true, first_bad: null, reason: null, records: [record] } as RecordsReply;
      const quitter = { ...hosts[0]!, records };
      const brokenQuitter = { ...hosts[1]!, records };
      const a = panel(renderPlot(plotModel([quitter, brokenQuitter], 'now')), 'env-a');
      assert.match(a.slice(a.indexOf('<g class="legend-item" data-participant="bea"')), /^[^]{0,800}⚠ score log NOT intact, gave up at 7\.5 h</);
      assert.match(a.slice(a.indexOf('<g class="legend-item" data-participant="ann"')), /^[^]{0,800}3 steps, gave up at 7\.5 h</);
      assert.doesNotMatch(panel(svg, 'env-a'), /gave up/);
    });

    it('escapes participant names and lists hosts that were not collected', () => {
      assert.match(svg, /data-participant="cat &lt;&amp;&gt; &quot;x&quot;"/);
      assert.doesNotMatch(svg, /cat <&>/);
      assert.match(svg, /Not collected \(1\):/);
      assert.match(svg, /dan \(agent@10\.0\.0\.1:25\): dan@10\.0\.0\.1:25 refused the connection/);
      assert.equal(escapeXml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    });

    it('widens the range for scores beyond the reference and pins extreme ones to its edge, saying so', () => {
      assert.match(panel(svg, 'env-a'), /class="y-tick">1\.2</); // bea's 12 of 10
      const wild = renderPlot(
        plotModel(
          [
            host(
              0,
              'ann',
              { id: 'env-a' },
              [
                { h: 1, score: -110 },
                { h: 2, score: 5 },
              ],
              {},
            ),
          ],
          'now',
        ),
      );
      assert.match(wild, /Normalised scores beyond -1\.5 … 2\.5 are drawn at the edge of the range\./);
      assert.equal(elements(wild, 'path').filter((p) => p.class === 'off-scale').length, 1);
      assert.equal(elements(svg, 'path').filter((p) => p.class === 'off-scale').length, 0);
      const ticks = [...wild.matchAll(/class="y-tick">([^<]*)</g)].map((m) => Number(m[1]));
      assert.ok(Math.min(...ticks) >= -1.5 && Math.max(...ticks) <= 1.5, String(ticks));
    });

    it('says so when nothing could be read', () => {
      const empty = renderPlot(plotModel([host(0, 'ann', null, [], { error: 'refused' })], 'now'));
      assertBalanced(empty);
      assert.match(empty, /No host could be read: nothing to plot\./);
      assert.equal(elements(empty, 'g').filter((g) => g.class === 'panel').length, 0);
    });
  });
});
