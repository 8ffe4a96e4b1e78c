"""The chat page (`GET /`) in a real headless Chromium against the real `owl serve` of conftest.

Debian's `/usr/bin/chromium` (or `$OWL_CHROMIUM`) is driven by Playwright; Playwright's own
browsers are never downloaded. The server runs with `--api-key`, so the page first asks for the
key. Replies come from the default model at temperature 0 (deterministic); only what the tiny
model cannot be relied on to write (code blocks, reasoning) is fed from a canned stream.
"""

import json
import os
import re
import time
import urllib.request

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

CHROMIUM = os.environ.get("OWL_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

ASSISTANT = '[data-role="assistant"]'
USER = '[data-role="user"]'

# Records (aria-busy, text length) of the last reply on every change, to prove it streamed.
RECORDER = """() => {
  window.__obs = [];
  new MutationObserver(() => {
    const all = document.querySelectorAll('[data-role="assistant"]');
    const el = all[all.length - 1];
    const body = el && el.querySelector('.body');
    if (el) window.__obs.push([el.getAttribute('aria-busy'), body ? body.textContent.length : 0]);
  }).observe(document.getElementById('log'),
             {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def replies_done(n: int) -> str:
    return f"""() => {{
      const e = document.querySelectorAll('{ASSISTANT}');
      return e.length === {n} && !e[{n - 1}].hasAttribute('aria-busy');
    }}"""


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing (scripts/test.sh installs Debian's chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def models(server) -> list:
    req = urllib.request.Request(server.base + "/v1/models",
                                 headers={"Authorization": f"Bearer {server.api_key}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return [m["id"] for m in json.load(r)["data"]]


def stopped_early(server, offset: int) -> bool:
    """Whether the server's log line for the stopped request shows it ended early."""
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(server.log, "rb") as f:
            f.seek(offset)
            lines = [ln for ln in f.read().decode(errors="replace").splitlines()
                     if "POST /v1/chat/completions" in ln]
        if lines:
            m = re.search(r"generated=(\d+)", lines[0])
            return bool(m) and int(m.group(1)) < 500
        time.sleep(0.1)
    return False


def test_chat_page(server, browser, tmp_path):
    ctx = browser.new_context(viewport={"width": 1100, "height": 800})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    crashes = []
    page.on("pageerror", lambda e: crashes.append(str(e)))
    page.on("console", lambda m: "Content Security Policy" in m.text and crashes.append(m.text))
    posted = []

    def on_request(r):
        if r.method == "POST" and r.url.endswith("/v1/chat/completions"):
            posted.append(json.loads(r.post_data))

    page.on("request", on_request)

    # The page loads without the key, then asks for it; a wrong key is refused visibly.
    page.goto(server.base + "/")
    key = page.get_by_label("API key", exact=True)
    expect(key).to_be_visible()
    key.fill("not-the-key")
    key.press("Enter")
    expect(page.locator("#key-error")).to_contain_text("refused")
    expect(key).to_be_visible()
    key.fill(server.api_key)
    key.press("Enter")
    expect(key).to_be_hidden()

    model_id = models(server)[0]
    picker = page.get_by_label("Model", exact=True)
    expect(picker.locator("option")).to_have_count(len(models(server)))
    picker.select_option(model_id)

    page.locator("#settings summary").click()
    page.get_by_label("System prompt", exact=True).fill("You are a helpful assistant.")
    page.get_by_label("Temperature", exact=True).fill("0")
    page.locator("#settings summary").click()

    # First turn: Enter sends, the reply streams in (aria-busy while it does).
    page.evaluate(RECORDER)
    box = page.get_by_label("Message", exact=True)
    box.fill("Describe Paris in three sentences.")
    box.press("Enter")
    expect(page.locator(USER)).to_have_count(1)
    page.wait_for_function(replies_done(1))
    obs = page.evaluate("window.__obs")
    streaming = {n for busy, n in obs if busy == "true" and n > 0}
    assert len(streaming) >= 2, f"the reply did not stream: {obs}"
    final = page.locator(ASSISTANT).nth(0).locator(".body").inner_text()
    assert final.strip(), "empty first reply"
    assert max(streaming) <= len(final) + 1

    req1 = posted[-1]
    assert req1["model"] == model_id and req1["stream"] is True and req1["temperature"] == 0
    assert [m["role"] for m in req1["messages"]] == ["system", "user"]

    # Second turn: the whole conversation goes to the server.
    box.fill("And what is the capital of Germany?")
    box.press("Enter")
    page.wait_for_function(replies_done(2))
    expect(page.locator(USER)).to_have_count(2)
    req2 = posted[-1]
    assert len(posted) == 2
    assert [m["role"] for m in req2["messages"]] == ["system", "user", "assistant", "user"]
    stored = page.evaluate("JSON.parse(localStorage.getItem('owl.convos'))")
    first_reply = stored[0]["messages"][1]["content"]
    assert req2["messages"][1]["content"] == "Describe Paris in three sentences."
    assert req2["messages"][2]["content"] == first_reply and first_reply.strip()
    assert page.locator(ASSISTANT).nth(1).locator(".body").inner_text().strip()

    # Shift+Enter is a new line, not a send.
    box.fill("line one")
    box.press("Shift+Enter")
    box.press_sequentially("line two")
    assert box.input_value() == "line one\nline two"
    page.wait_for_timeout(200)
    assert len(posted) == 2
    expect(page.locator(USER)).to_have_count(2)

    # Stop ends a long reply (about 1000 tokens, until the context is full) and keeps what arrived.
    log_from = server.log.stat().st_size
    box.fill("Write a very long story about a dragon who learns to fly, in twenty paragraphs.")
    box.press("Enter")
    third = page.locator(ASSISTANT).nth(2)
    expect(third).to_have_attribute("aria-busy", "true")
    page.wait_for_function(
        f"() => document.querySelectorAll('{ASSISTANT}')[2].querySelector('.body').textContent.length > 20")
    page.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_function(replies_done(3))
    expect(third.locator(".note")).to_have_text("stopped")
    kept = third.locator(".body").inner_text()
    assert kept.strip()
    page.wait_for_timeout(300)
    assert third.locator(".body").inner_text() == kept
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()
    assert stopped_early(server, log_from), "the server did not stop generating"

    texts = [page.locator(ASSISTANT).nth(i).locator(".body").inner_text() for i in range(3)]
    shot = tmp_path / "chat.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

    # Reload: the conversation and the settings come back from localStorage.
    page.reload()
    expect(page.locator(ASSISTANT)).to_have_count(3)
    assert [page.locator(ASSISTANT).nth(i).locator(".body").inner_text() for i in range(3)] == texts
    expect(page.locator(USER)).to_have_count(3)
    expect(page.get_by_label("Temperature", exact=True)).to_have_value("0")
    expect(page.get_by_label("API key", exact=True)).to_be_hidden()
    expect(page.locator("#convos li")).to_have_count(1)

    # New conversation, switch back, delete.
    page.get_by_role("button", name="+ New chat").click()
    expect(page.locator(ASSISTANT)).to_have_count(0)
    page.locator("#convos .open").first.click()
    expect(page.locator(ASSISTANT)).to_have_count(3)
    page.locator("#convos .delete").first.click()
    expect(page.locator("#convos li")).to_have_count(0)
    page.reload()
    expect(page.locator(ASSISTANT)).to_have_count(0)

    assert not crashes, crashes
    ctx.close()


def test_markdown_reasoning_and_errors(server, browser):
    ctx = browser.new_context()
    ctx.add_init_script(f"localStorage.setItem('owl.key', {json.dumps(json.dumps(server.api_key))})")
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.goto(server.base + "/")
    expect(page.get_by_label("Model", exact=True).locator("option")).not_to_have_count(0)

    # The renderer, on a known string: escaped first, then Markdown.
    html = page.evaluate("""() => owlMarkdown(
        "# Title\\n\\nSome **bold**, *it* and `x<y`.\\n\\n```python\\nprint('<b>')\\n```\\n\\n"
        + "- a\\n- b\\n\\n1. one\\n\\n[site](https://example.com) [bad](javascript:alert(1)) "
        + "<script>alert(1)</script>")""")
    for part in ["<h1>Title</h1>", "<strong>bold</strong>", "<em>it</em>", "<code>x&lt;y</code>",
                 '<span class="lang">python</span>', '<code class="language-python">',
                 "print(&#39;&lt;b&gt;&#39;)", "<ul><li>a</li><li>b</li></ul>", "<ol><li>one</li></ol>",
                 '<a href="https://example.com" target="_blank" rel="noopener noreferrer">site</a>',
                 "&lt;script&gt;"]:
        assert part in html, (part, html)
    assert "<script" not in html and 'href="javascript' not in html

    # A canned stream: reasoning goes in a closed <details>, the code block renders live.
    chunks = [{"reasoning_content": "Think "}, {"reasoning_content": "first."},
              {"content": "Here:\n\n```rust\nfn main() {}\n"}, {"content": "```\n"}]
    body = "".join(f"data: {json.dumps({'choices': [{'index': 0, 'delta': d}]})}\n\n" for d in chunks)
    page.route("**/v1/chat/completions", lambda route: route.fulfill(
        status=200, headers={"content-type": "text/event-stream"}, body=body + "data: [DONE]\n\n"))
    box = page.get_by_label("Message", exact=True)
    box.fill("show me code")
    box.press("Enter")
    page.wait_for_function(replies_done(1))
    reply = page.locator(ASSISTANT)
    expect(reply.locator("details.reasoning")).to_have_count(1)
    assert reply.locator("details.reasoning").get_attribute("open") is None
    expect(reply.locator("details.reasoning .md")).to_have_text("Think first.", use_inner_text=False)
    expect(reply.locator(".body pre code.language-rust")).to_have_text("fn main() {}")
    expect(reply.locator(".code .lang")).to_have_text("rust")

    # A real server error (a prompt longer than the context) shows in the conversation.
    page.unroute("**/v1/chat/completions")
    box.fill("word " * (server.ctx + 200))
    box.press("Enter")
    page.wait_for_function(replies_done(2))
    expect(page.locator(ASSISTANT).nth(1).locator(".note.error")).to_contain_text("context")
    ctx.close()
