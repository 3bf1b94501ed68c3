// hookrelay dashboard: one account's endpoints, secrets, deliveries and replays, on the /v1 API.
// Plain DOM code, no dependencies. Every value from the API is written with textContent.
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  key: sessionStorage.getItem('hookrelay-key') || '',
  account: sessionStorage.getItem('hookrelay-account') || '',
  me: null,
  types: [],
  endpoints: [],
  selected: null,
  log: [],
  cursor: null,
  open: new Set(),
  replays: new Map(),
  timer: null,
};

// ---- helpers -------------------------------------------------------------------------------

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') el.className = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = dv;
    else el[k] = v;
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || ('HTTP ' + status));
    this.status = status;
    this.field = e.field;
  }
}

async function api(method, path, body) {
  const init = { method, headers: { Authorization: 'Bearer ' + state.key } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

function flash(message, bad) {
  const el = $('flash');
  el.textContent = message;
  el.className = bad ? 'flash bad' : 'flash';
  el.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { el.hidden = true; }, bad ? 8000 : 4000);
}

function fail(err) {
  if (err && err.status === 401) { signOut('That key is not valid (or was revoked).'); return; }
  flash((err && err.field ? err.field + ': ' : '') + ((err && err.message) || err), true);
}

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

function localInputToIso(value) {
  return value ? new Date(value).toISOString() : null;
}

function isoToLocalInput(ms) {
  const d = new Date(ms - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function accountQuery() {
  return state.me && state.me.scope === 'operator' ? '?account_id=' + encodeURIComponent(state.account) : '';
}

// ---- key -------------------------------------------------------------------------------------

function takeKeyFromFragment() {
  const m = location.hash.match(/key=([^&]+)/);
  if (m) {
    state.key = decodeURIComponent(m[1]);
    sessionStorage.setItem('hookrelay-key', state.key);
    history.replaceState(null, '', location.pathname);
  }
}

function signOut(message) {
  sessionStorage.removeItem('hookrelay-key');
  state.key = '';
  stopLive();
  $('app').hidden = true;
  $('sign-out').hidden = true;
  $('account-picker').hidden = true;
  $('who').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = message || '';
}

async function start() {
  try {
    state.me = await api('GET', '/v1/me');
  } catch (err) {
    signOut(err.status === 401 ? 'That key is not valid (or was revoked).' : err.message);
    return;
  }
  $('login').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = false;
  if (state.me.scope === 'operator') {
    $('account-picker').hidden = false;
    $('account-input').value = state.account;
    $('who').textContent = 'operator key ' + state.me.key_id;
  } else {
    $('who').textContent = 'account ' + state.me.account_id;
  }
  const [types, egress] = await Promise.all([api('GET', '/v1/event-types'), api('GET', '/v1/egress-ips')]);
  state.types = types.data.filter((t) => t.subscribable);
  renderTypeFilters(types.data);
  $('egress-ips').replaceChildren(...(egress.ips.length
    ? egress.ips.map((ip) => h('li', {}, ip))
    : [h('li', { class: 'muted' }, 'not published by the operator')]));
  await loadEndpoints();
}

// ---- endpoints -------------------------------------------------------------------------------

async function loadEndpoints(selectId) {
  if (state.me.scope === 'operator' && !state.account) {
    state.endpoints = [];
    renderEndpoints();
    flash('Operator key: enter an account id above.', true);
    return;
  }
  const all = [];
  let cursor = null;
  do {
    const q = accountQuery();
    const sep = q ? '&' : '?';
    const page = await api('GET', '/v1/endpoints' + q + (cursor ? sep + 'cursor=' + encodeURIComponent(cursor) : ''));
    all.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  state.endpoints = all;
  renderEndpoints();
  const id = selectId || (state.selected && state.selected.id);
  const found = all.find((e) => e.id === id);
  if (found) select(found);
  else if (!state.selected && all.length) select(all[0]);
  else if (!found) showEmpty();
}

function renderEndpoints() {
  $('endpoint-list').replaceChildren(...state.endpoints.map((e) => h('li', {
    class: state.selected && state.selected.id === e.id ? 'selected' : '',
    data: { id: e.id },
    on: { click: () => select(e) },
  },
  h('span', { class: 'badge ' + e.state }, e.state), ' ',
  h('strong', {}, e.description || e.id),
  h('span', { class: 'url muted' }, e.url))));
  $('no-endpoints').hidden = state.endpoints.length > 0;
}

function renderTypeFilters(all) {
  $('ep-types').replaceChildren(...state.types.map((t) => h('label', { class: 'inline', title: t.description },
    h('input', { type: 'checkbox', value: t.type }), t.type)));
  $('f-type').replaceChildren(h('option', { value: '' }, 'any'), ...all.map((t) => h('option', { value: t.type }, t.type)));
}

function showEmpty() {
  state.selected = null;
  stopLive();
  $('empty-detail').hidden = false;
  $('endpoint-form').hidden = true;
  $('endpoint-tools').hidden = true;
}

function newEndpoint() {
  state.selected = null;
  stopLive();
  renderEndpoints();
  $('empty-detail').hidden = true;
  $('endpoint-form').hidden = false;
  $('endpoint-tools').hidden = true;
  $('form-title').textContent = 'New endpoint';
  $('state-banner').hidden = true;
  $('ep-delete').hidden = true;
  $('ep-version').textContent = '';
  $('ep-url').value = '';
  $('ep-description').value = '';
  $('ep-contact').value = '';
  $('ep-rate').value = '';
  $('ep-concurrency').value = '';
  $('ep-batching').checked = true;
  $('ep-enabled').checked = true;
  for (const box of $('ep-types').querySelectorAll('input')) box.checked = false;
  $('ep-url').focus();
}

function select(e) {
  const changed = !state.selected || state.selected.id !== e.id;
  state.selected = e;
  renderEndpoints();
  $('empty-detail').hidden = true;
  $('endpoint-form').hidden = false;
  $('endpoint-tools').hidden = false;
  $('form-title').textContent = e.description || e.id;
  $('ep-delete').hidden = false;
  $('ep-version').textContent = e.id + ' · version ' + e.version;
  $('ep-url').value = e.url;
  $('ep-description').value = e.description || '';
  $('ep-contact').value = e.contact_email || '';
  $('ep-rate').value = e.rate_limit_per_sec || '';
  $('ep-concurrency').value = e.max_concurrency || '';
  $('ep-batching').checked = e.batching.enabled;
  $('ep-enabled').checked = e.enabled;
  for (const box of $('ep-types').querySelectorAll('input')) box.checked = e.event_types.includes(box.value);
  renderState(e);
  if (changed) {
    $('secret-value').textContent = 'whsec_••••••••••••••••';
    $('reveal-secret').textContent = 'Reveal';
    $('rotating').replaceChildren();
    state.log = [];
    state.cursor = null;
    state.open.clear();
    $('r-since').value = isoToLocalInput(Date.now() - 24 * 3600 * 1000);
    renderReplays();
    loadLog();
  }
  startLive();
}

function renderState(e) {
  const banner = $('state-banner');
  if (e.state === 'active') { banner.hidden = true; return; }
  banner.hidden = false;
  banner.className = 'banner ' + e.state;
  if (e.state === 'disabled') {
    const d = e.disabled || {};
    $('state-text').textContent = 'Disabled by the circuit breaker (' + (d.reason || 'failures') + ') at ' + when(d.at)
      + (d.last_error ? ': ' + d.last_error : '') + '. Events meanwhile are kept as dead letters.';
    $('enable-replay').parentElement.hidden = false;
    $('enable').textContent = 'Re-enable';
  } else {
    $('state-text').textContent = 'Paused: events are not delivered while paused.';
    $('enable-replay').parentElement.hidden = true;
    $('enable').textContent = 'Resume';
  }
}

function formBody() {
  const num = (v) => (v === '' ? null : Number(v));
  return {
    url: $('ep-url').value.trim(),
    description: $('ep-description').value.trim() || null,
    contact_email: $('ep-contact').value.trim() || null,
    event_types: [...$('ep-types').querySelectorAll('input:checked')].map((b) => b.value),
    rate_limit_per_sec: num($('ep-rate').value),
    max_concurrency: num($('ep-concurrency').value),
    batching: { enabled: $('ep-batching').checked },
    enabled: $('ep-enabled').checked,
  };
}

async function save(ev) {
  ev.preventDefault();
  const body = formBody();
  try {
    let saved;
    if (state.selected) {
      saved = await api('PATCH', '/v1/endpoints/' + state.selected.id, { ...body, version: state.selected.version });
      flash('Saved.');
    } else {
      if (state.me.scope === 'operator') body.account_id = state.account;
      for (const k of ['description', 'contact_email', 'rate_limit_per_sec', 'max_concurrency']) if (body[k] === null) delete body[k];
      saved = await api('POST', '/v1/endpoints', body);
      flash('Endpoint created. Reveal its signing secret below to verify requests.');
    }
    await loadEndpoints(saved.id);
  } catch (err) {
    if (err.status === 409) flash('Someone changed this endpoint meanwhile; reloaded it. Save again to apply your change.', true);
    else fail(err);
    if (err.status === 409) await loadEndpoints();
  }
}

async function remove() {
  const e = state.selected;
  if (!e || !confirm('Delete ' + (e.description || e.id) + '? Deliveries to it stop.')) return;
  try {
    await api('DELETE', '/v1/endpoints/' + e.id);
    state.selected = null;
    flash('Deleted.');
    await loadEndpoints();
  } catch (err) { fail(err); }
}

async function enable() {
  const e = state.selected;
  try {
    const replay = e.state === 'disabled' && $('enable-replay').checked;
    const res = await api('POST', '/v1/endpoints/' + e.id + '/enable', { replay });
    if (res.replay) { state.replays.set(res.replay.id, res.replay); followReplay(res.replay.id); }
    flash(res.replay ? 'Re-enabled; replaying what was dead-lettered meanwhile.' : 'Enabled.');
    await loadEndpoints(e.id);
  } catch (err) { fail(err); }
}

// ---- secret ----------------------------------------------------------------------------------

async function reveal() {
  const e = state.selected;
  if ($('reveal-secret').textContent === 'Hide') {
    $('secret-value').textContent = 'whsec_••••••••••••••••';
    $('reveal-secret').textContent = 'Reveal';
    $('rotating').replaceChildren();
    return;
  }
  try {
    showSecret(await api('GET', '/v1/endpoints/' + e.id + '/secret'));
  } catch (err) { fail(err); }
}

function showSecret(s) {
  $('secret-value').textContent = s.secret;
  $('reveal-secret').textContent = 'Hide';
  $('rotating').replaceChildren(...s.rotating.map((r) => h('li', {}, 'still signing until ' + when(r.expires_at) + ': ' + r.secret)));
}

async function rotate() {
  const e = state.selected;
  const overlap = Number($('rotate-overlap').value);
  try {
    const s = await api('POST', '/v1/endpoints/' + e.id + '/secret/rotate', { overlap_secs: overlap });
    showSecret(s);
    flash(overlap ? 'New secret active; the old one keeps signing for the overlap.' : 'New secret active; the old one stopped.');
    await loadEndpoints(e.id);
  } catch (err) { fail(err); }
}

// ---- delivery log ----------------------------------------------------------------------------

function logQuery(cursor) {
  const p = new URLSearchParams();
  p.set('limit', '25');
  if ($('f-outcome').value) p.set('outcome', $('f-outcome').value);
  if ($('f-type').value) p.set('event_type', $('f-type').value);
  const since = localInputToIso($('f-since').value);
  const until = localInputToIso($('f-until').value);
  if (since) p.set('since', since);
  if (until) p.set('until', until);
  if (cursor) p.set('cursor', cursor);
  return p.toString();
}

async function loadLog(more) {
  const e = state.selected;
  if (!e) return;
  try {
    const page = await api('GET', '/v1/endpoints/' + e.id + '/attempts?' + logQuery(more ? state.cursor : null));
    if (!state.selected || state.selected.id !== e.id) return;
    state.log = more ? state.log.concat(page.data) : page.data;
    state.cursor = page.next_cursor;
    renderLog();
  } catch (err) { fail(err); }
}

function attemptKey(a) { return a.delivery_id + '#' + a.attempt + '#' + a.at_ms + '#' + a.outcome; }

function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return text; }
}

function outcomeLabel(a) {
  return { delivered: 'delivered', retry_scheduled: 'failed', dead_lettered: 'dead-lettered', dropped: 'dropped' }[a.outcome] || a.outcome;
}

function renderLog() {
  const rows = [];
  for (const a of state.log) {
    const key = attemptKey(a);
    const retry = h('button', {
      class: 'retry', type: 'button', title: 'Send this delivery again now, with the same webhook-id',
      on: { click: (ev) => { ev.stopPropagation(); retryDelivery(a.delivery_id); } },
    }, 'Retry');
    rows.push(h('tr', {
      class: 'attempt', data: { outcome: a.outcome, delivery: a.delivery_id },
      on: { click: () => { if (state.open.has(key)) state.open.delete(key); else state.open.add(key); renderLog(); } },
    },
    h('td', {}, when(a.at)),
    h('td', {}, h('span', { class: 'badge ' + a.outcome }, outcomeLabel(a))),
    h('td', {}, a.status === null ? (a.error_class || '—') : String(a.status)),
    h('td', {}, a.batch ? 'batch of ' + a.event_ids.length : (a.event_types[0] || '')),
    h('td', {}, String(a.attempt)),
    h('td', {}, a.latency_ms + ' ms'),
    h('td', { class: 'mono' }, a.delivery_id),
    h('td', {}, a.request_body ? retry : '')));
    if (state.open.has(key)) {
      rows.push(h('tr', { class: 'payload' }, h('td', { colSpan: 8 },
        a.error ? h('div', {}, h('strong', {}, 'Error: '), a.error + (a.error_class ? ' (' + a.error_class + ')' : '')) : null,
        a.next_attempt_at ? h('div', {}, 'Next automatic attempt: ' + when(a.next_attempt_at)) : null,
        a.dead_letter_reason ? h('div', {}, 'Dead-lettered: ' + a.dead_letter_reason) : null,
        h('div', { class: 'muted small' }, 'Events: ' + a.event_ids.join(', ')),
        h('div', {}, h('strong', {}, 'Request body')),
        h('pre', { class: 'request-body' }, a.request_body ? pretty(a.request_body) : '(nothing was sent)'),
        a.response_snippet ? h('div', {}, h('strong', {}, 'Response')) : null,
        a.response_snippet ? h('pre', {}, a.response_snippet) : null)));
    }
  }
  $('log-body').replaceChildren(...rows);
  $('log-empty').hidden = state.log.length > 0;
  $('log-more').hidden = !state.cursor;
}

async function sendTest() {
  const e = state.selected;
  try {
    const q = await api('POST', '/v1/endpoints/' + e.id + '/test', {});
    flash('Test event sent (' + q.delivery_id + '). It appears below in a moment.');
    setTimeout(() => loadLog(), 700);
  } catch (err) { fail(err); }
}

async function retryDelivery(id) {
  const e = state.selected;
  try {
    const q = await api('POST', '/v1/endpoints/' + e.id + '/deliveries/' + encodeURIComponent(id) + '/retry', {});
    flash('Retrying ' + q.delivery_id + ' now (attempt ' + q.attempt + ').');
    setTimeout(() => loadLog(), 700);
  } catch (err) { fail(err); }
}

function startLive() {
  stopLive();
  if (!$('f-live').checked) return;
  state.timer = setInterval(() => {
    if (document.hidden || !state.selected) return;
    if (!state.cursor || state.log.length <= 25) loadLog();
  }, 3000);
}

function stopLive() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

// ---- replays ---------------------------------------------------------------------------------

async function replay(ev) {
  ev.preventDefault();
  const e = state.selected;
  const body = { since: localInputToIso($('r-since').value) };
  const until = localInputToIso($('r-until').value);
  if (until) body.until = until;
  if ($('r-reason').value) body.reason = $('r-reason').value;
  if ($('r-max').value) body.max = Number($('r-max').value);
  try {
    const r = await api('POST', '/v1/endpoints/' + e.id + '/replays', body);
    state.replays.set(r.id, r);
    renderReplays();
    followReplay(r.id);
  } catch (err) { fail(err); }
}

function followReplay(id) {
  const tick = async () => {
    try {
      const r = await api('GET', '/v1/replays/' + id);
      state.replays.set(id, r);
      renderReplays();
      if (r.state === 'running') setTimeout(tick, 1000);
      else loadLog();
    } catch (err) { fail(err); }
  };
  setTimeout(tick, 500);
}

function renderReplays() {
  const e = state.selected;
  const mine = [...state.replays.values()].filter((r) => e && r.endpoint_id === e.id).reverse();
  $('replays').replaceChildren(...mine.map((r) => h('li', { data: { state: r.state } },
    h('span', { class: 'badge ' + (r.state === 'done' ? 'delivered' : r.state === 'failed' ? 'dead_lettered' : 'retry_scheduled') }, r.state),
    ' ', r.replayed + ' re-sent of ' + r.matched + ' found (' + r.scanned + ' dead letters read)',
    r.duplicates ? ', ' + r.duplicates + ' duplicates skipped' : '',
    r.capped ? '; stopped at ' + r.max + ', continue from ' + when(r.resume_since) : '',
    r.error ? '; ' + r.error : '')));
}

// ---- wiring ----------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  takeKeyFromFragment();
  $('key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.key = $('key-input').value.trim();
    sessionStorage.setItem('hookrelay-key', state.key);
    start();
  });
  $('sign-out').addEventListener('click', () => signOut());
  $('account-input').addEventListener('change', () => {
    state.account = $('account-input').value.trim();
    sessionStorage.setItem('hookrelay-account', state.account);
    state.selected = null;
    loadEndpoints().catch(fail);
  });
  $('new-endpoint').addEventListener('click', newEndpoint);
  $('endpoint-form').addEventListener('submit', save);
  $('ep-delete').addEventListener('click', remove);
  $('enable').addEventListener('click', enable);
  $('reveal-secret').addEventListener('click', reveal);
  $('rotate-secret').addEventListener('click', rotate);
  $('send-test').addEventListener('click', sendTest);
  $('log-filters').addEventListener('submit', (ev) => { ev.preventDefault(); state.cursor = null; loadLog(); startLive(); });
  $('f-live').addEventListener('change', startLive);
  $('log-more').addEventListener('click', () => loadLog(true));
  $('replay-form').addEventListener('submit', replay);
  if (state.key) start(); else signOut();
});
