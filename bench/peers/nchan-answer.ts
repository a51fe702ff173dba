/**
 * Reading an nchan answer: one header of its head, and its message bodies (several when
 * `nchan_longpoll_multipart_response on` packs every queued message into one multipart answer).
 */

export function header(head: string, name: string): string | null {
  const match = new RegExp(`\\r\\n${name}:[ \\t]*([^\\r]*)`, 'i').exec(head);
  return match ? (match[1] ?? '').trim() : null;
}

/** The message bodies of a multipart/mixed answer (or the one body of a plain answer). */
export function messages(head: string, body: Buffer): string[] {
  const type = header(head, 'content-type') ?? '';
  const boundary = /boundary=([^;\s]+)/.exec(type)?.[1];
  const text = body.toString('utf8');
  if (!type.startsWith('multipart/') || boundary === undefined) return [text];
  const out: string[] = [];
  for (const part of text.split(`--${boundary}`)) {
    if (part.startsWith('--') || part.trim() === '') continue;
    const start = part.indexOf('\r\n\r\n');
    if (start === -1) continue;
    out.push(part.slice(start + 4).replace(/\r\n$/, ''));
  }
  return out;
}
