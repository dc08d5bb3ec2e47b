// Progressive enhancement only: every page works without this file.
// 1. "New organization": suggest a slug from the name while the slug field is untouched.
// 2. Copy buttons next to values an admin pastes into their IdP.
document.addEventListener('DOMContentLoaded', () => {
  const name = document.querySelector('[data-slug-source]');
  const slug = document.querySelector('[data-slug-target]');
  if (name && slug) {
    let touched = slug.value !== '';
    slug.addEventListener('input', () => { touched = slug.value !== ''; });
    name.addEventListener('input', () => {
      if (touched) return;
      const s = name.value.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64);
      slug.placeholder = s || '';
      const out = document.getElementById('slug-suggestion');
      if (out) out.textContent = s ? `Suggested: ${s}` : '';
    });
  }
  for (const el of document.querySelectorAll('[data-copy]')) {
    if (!navigator.clipboard) continue;
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary small';
    b.textContent = 'Copy';
    b.setAttribute('aria-label', `Copy ${el.getAttribute('data-copy')}`);
    b.addEventListener('click', () => navigator.clipboard.writeText(el.textContent.trim()).then(() => { b.textContent = 'Copied'; }));
    el.after(' ', b);
  }
});
