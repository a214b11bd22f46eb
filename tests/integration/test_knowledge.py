"""Knowledge retrieval on the database's own full-text engine (Postgres or SQLite FTS5, the
one this suite runs on): indexing, ranking, the package's documents, uploads in admin, a run's
first phase, the escalation page, and isolation between agents."""

from __future__ import annotations

import pytest
from django.contrib.admin import site
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from agentdesk.agents import get_agent
from runs import errors, knowledge
from runs.knowledge_admin import KnowledgeDocumentInline
from runs.models import Agent, AuditEvent, KnowledgeChunk, KnowledgeDocument, Policy, Team

from .helpers import open_escalation, submit, wait_status

KETTLE = b"""# Kettle descaling

Descale the kettle every month with citric acid. Fill it halfway, boil, wait twenty minutes
and rinse twice. Limescale makes the kettle slow and noisy.
"""
GARDEN = b"""Garden furniture

Teak benches should be oiled once a year. Cover them in winter so rain does not crack the wood.
"""
SHELF = b"""<html><head><title>Assembling the bookshelf</title></head><body>
<h1>Assembling the bookshelf</h1><p>Use the six wooden dowels and the small hex key. Tighten
the cam locks a quarter turn; <b>do not</b> overtighten them.</p></body></html>"""


def make_agent(slug: str = "helper", team: Team | None = None) -> Agent:
    team = team or Team.objects.get_or_create(slug="kb", defaults={"name": "KB team"})[0]
    return Agent.objects.create(team=team, slug=slug, name=slug,
                                policy=Policy.objects.get_or_create(team=team,
                                                                    name="kb-policy")[0])


def sources(agent: Agent, query: str, limit: int = 3) -> list[str]:
    return [p.source for p in knowledge.DjangoKnowledge(agent.pk).search(query, limit)]


def index_in_sync(agent: Agent) -> None:
    """The engine's own bookkeeping agrees with the chunk rows."""
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "SELECT count(*) FROM (SELECT word, ndoc FROM ts_stat("
                f"'SELECT search FROM runs_knowledgechunk WHERE agent_id = {int(agent.pk)}')) s "
                "FULL JOIN (SELECT lexeme, chunks FROM runs_knowledgeterm WHERE agent_id = %s "
                "AND lexeme <> '') t ON t.lexeme = s.word WHERE s.ndoc IS DISTINCT FROM t.chunks",
                [agent.pk])
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT chunks FROM runs_knowledgeterm WHERE agent_id = %s AND lexeme = ''",
                        [agent.pk])
            row = cur.fetchone()
            assert (row[0] if row else 0) == KnowledgeChunk.objects.filter(agent=agent).count()
            cur.execute("SELECT count(*) FROM runs_knowledgechunk WHERE search IS NULL")
            assert cur.fetchone()[0] == 0
        else:
            cur.execute("INSERT INTO runs_knowledgechunk_fts(runs_knowledgechunk_fts) "
                        "VALUES ('integrity-check')")


# -- indexing and search ------------------------------------------------------------------

@pytest.mark.django_db
def test_documents_are_chunked_indexed_and_found_with_title_and_score():
    agent = make_agent()
    doc = knowledge.index_document(agent, "kettle.md", KETTLE)
    knowledge.index_document(agent, "garden.txt", GARDEN)
    knowledge.index_document(agent, "shelf.html", SHELF)

    assert (doc.title, doc.origin, doc.size_bytes) == ("Kettle descaling", "upload", len(KETTLE))
    assert doc.content.startswith("Descale the kettle") and len(doc.checksum) == 64
    assert doc.chunks.count() == 1
    passages = knowledge.DjangoKnowledge(agent.pk).search("My kettle got really noisy", 3)
    assert passages[0].source == "kettle.md" and passages[0].title == "Kettle descaling"
    assert "citric acid" in passages[0].text and passages[0].score > 0
    shelf = knowledge.DjangoKnowledge(agent.pk).search("which key for the bookshelf dowels?")
    assert shelf[0].source == "shelf.html" and shelf[0].title == "Assembling the bookshelf"
    assert "<b>" not in shelf[0].text and "do not overtighten" in shelf[0].text
    assert sources(agent, "how should I look after teak benches in winter")[0] == "garden.txt"
    index_in_sync(agent)


@pytest.mark.django_db
def test_ranking_or_semantics_stemming_rare_words_and_titles():
    agent = make_agent()
    knowledge.index_document(agent, "a.md", b"# Orders\n\nEvery order ships in a box. "
                                            b"Your order is packed with care, order by order.")
    knowledge.index_document(agent, "b.md", b"# Warranty\n\nA cracked screen in the first "
                                            b"year is repaired for free with your order.")
    knowledge.index_document(agent, "c.md", b"# Gift wrapping\n\nWe wrap gifts in recycled "
                                            b"paper.")
    # a question's words are ORed: nothing has them all, the best match still comes first
    assert sources(agent, "my screen arrived cracked, what happens with my order?")[0] == "b.md"
    # a rare word counts more than one that is everywhere
    assert sources(agent, "order repaired")[0] == "b.md"
    # stemming: "wrapped" finds "wrap", and a title match ranks
    assert sources(agent, "Can my present be wrapped?")[0] == "c.md"
    assert sources(agent, "warranty")[0] == "b.md"
    # passages that match nothing are not returned; noise alone is no question
    assert sources(agent, "umbrella") == []
    # the engines' query syntax is never passed through: these are words, not operators
    assert sources(agent, 'NOT "gift" OR (wrap* : ^paper) NEAR/2 -order AND \' ; --')[0] in (
        "a.md", "c.md")
    assert sources(agent, "screen " * 3000)[0] == "b.md"  # a long message: its first words
    assert sources(agent, "Hi there, thanks!") == []
    assert sources(agent, "") == []
    assert len(knowledge.DjangoKnowledge(agent.pk).search("order", 2)) == 2


@pytest.mark.django_db
def test_replacing_a_document_replaces_its_chunks_and_deleting_it_unindexes_it():
    agent = make_agent()
    first = knowledge.index_document(agent, "kettle.md", KETTLE)
    again = knowledge.index_document(agent, "kettle.md", b"# Kettle\n\nThe kettle has a "
                                                          b"two-year guarantee.")
    assert again.pk == first.pk and KnowledgeDocument.objects.filter(agent=agent).count() == 1
    assert sources(agent, "citric limescale") == []
    assert sources(agent, "kettle guarantee") == ["kettle.md"]
    index_in_sync(agent)

    assert knowledge.reindex_document(again.pk) == 1
    assert sources(agent, "kettle guarantee") == ["kettle.md"]
    again.delete()
    assert sources(agent, "kettle guarantee") == []
    assert not KnowledgeChunk.objects.filter(agent=agent).exists()
    index_in_sync(agent)


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "raw", "error", "words"), [
    ("manual.pdf", b"%PDF-1.7 ...", errors.DocumentRejected, "only Markdown (.md)"),
    ("notes", b"hello", errors.DocumentRejected, "a file without a suffix"),
    ("photo.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", errors.DocumentRejected,
     "looks like a binary file"),
    ("latin1.txt", "Café crème".encode("latin-1"), errors.DocumentRejected, "not UTF-8 text"),
    ("empty.md", b"# Only a title\n", errors.DocumentRejected, "no text to index"),
    ("big.md", b"# Big\n\n" + b"word " * 400, errors.DocumentTooLarge, "at most 1 KiB"),
])
def test_documents_that_cannot_be_indexed_are_refused_with_what_to_do(settings, name, raw,
                                                                       error, words):
    settings.KNOWLEDGE_MAX_BYTES = 1024
    agent = make_agent()
    with pytest.raises(error) as caught:
        knowledge.index_document(agent, name, raw)
    assert words in caught.value.message and caught.value.fields["file"]
    assert caught.value.status == (413 if error is errors.DocumentTooLarge else 422)
    assert not KnowledgeDocument.objects.exists()


@pytest.mark.django_db
def test_another_agents_documents_are_never_returned():
    ours = make_agent("ours")
    theirs = make_agent("theirs", Team.objects.create(slug="rival", name="Rival"))
    knowledge.index_document(ours, "kettle.md", KETTLE)
    knowledge.index_document(theirs, "kettle-secrets.md", b"# Kettle secrets\n\nOur kettle "
                                                          b"descaling trick: vinegar, citric acid.")
    knowledge.index_document(theirs, "garden.txt", GARDEN)
    assert sources(ours, "kettle descaling citric acid vinegar", 10) == ["kettle.md"]
    assert sources(ours, "teak benches") == []
    assert set(sources(theirs, "kettle teak", 10)) == {"kettle-secrets.md", "garden.txt"}


# -- the package's documents ----------------------------------------------------------------

@pytest.mark.django_db
def test_package_sync_is_idempotent_follows_the_files_and_leaves_uploads_alone(tmp_path):
    agent = make_agent()
    (tmp_path / "kettle.md").write_bytes(KETTLE)
    (tmp_path / "garden.txt").write_bytes(GARDEN)
    (tmp_path / "orders.json").write_text("{}")  # not a document: ignored
    first = knowledge.sync_folder(agent, tmp_path)
    assert sorted(first.added) == ["garden.txt", "kettle.md"] and not first.updated
    chunk_ids = set(KnowledgeChunk.objects.values_list("pk", flat=True))

    second = knowledge.sync_folder(agent, tmp_path)
    assert sorted(second.unchanged) == ["garden.txt", "kettle.md"] and not second.changed
    assert set(KnowledgeChunk.objects.values_list("pk", flat=True)) == chunk_ids

    (tmp_path / "kettle.md").write_bytes(KETTLE.replace(b"citric acid", b"white vinegar"))
    (tmp_path / "garden.txt").unlink()
    (tmp_path / "shelf.html").write_bytes(SHELF)
    (tmp_path / "broken.md").write_bytes(b"\x00\x01binary")
    knowledge.index_document(agent, "faq.md", b"# FAQ\n\nUploaded by an admin.")
    third = knowledge.sync_folder(agent, tmp_path)
    assert (third.updated, third.removed, third.added) == (["kettle.md"], ["garden.txt"],
                                                           ["shelf.html"])
    assert "binary" in third.skipped["broken.md"]
    assert sources(agent, "white vinegar") == ["kettle.md"]
    assert sorted(KnowledgeDocument.objects.values_list("name", "origin")) == [
        ("faq.md", "upload"), ("kettle.md", "package"), ("shelf.html", "package")]

    # an upload named like a package file wins over it, and stays
    knowledge.index_document(agent, "kettle.md", b"# Kettle\n\nOur own kettle notes.")
    fourth = knowledge.sync_folder(agent, tmp_path)
    assert fourth.kept_uploads == ["kettle.md"] and not fourth.changed
    assert sources(agent, "own kettle notes")[0] == "kettle.md"
    index_in_sync(agent)


@pytest.mark.django_db
def test_the_worker_indexes_missing_package_documents_once_per_process(
        tmp_path, django_assert_max_num_queries):
    agent = make_agent()
    (tmp_path / "kettle.md").write_bytes(KETTLE)
    knowledge.forget_checks()
    store = knowledge.knowledge_for(agent, tmp_path)
    assert store.search("kettle limescale")[0].source == "kettle.md"
    with django_assert_max_num_queries(0):  # checked already: a stat of the files, no query
        knowledge.knowledge_for(agent, tmp_path)
    (tmp_path / "garden.txt").write_bytes(GARDEN)  # a file changed: checked again
    knowledge.knowledge_for(agent, tmp_path)
    assert sources(agent, "teak benches") == ["garden.txt"]


@pytest.mark.django_db
def test_a_sync_that_fails_is_logged_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    agent = make_agent()
    (tmp_path / "kettle.md").write_bytes(KETTLE)
    knowledge.forget_checks()

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(knowledge.documents, "sync_folder", broken)
    store = knowledge.knowledge_for(agent, tmp_path)
    assert store.search("kettle") == [] and "disk on fire" in caplog.text


def test_seed_demo_indexes_the_demo_documents(demo):
    agent = Agent.objects.get(team=demo["team"], slug="support-refunds")
    folder = get_agent("support-refunds").knowledge_dir
    docs = KnowledgeDocument.objects.filter(agent=agent)
    assert docs.count() == len(knowledge.package_files(folder)) >= 30
    assert set(docs.values_list("origin", flat=True)) == {"package"}
    # what a run's first phase gets: the three best passages
    assert "refund-policy.md" in sources(agent, "How long does a refund take to arrive?")
    assert "order-cancellation.md" in sources(agent, "How do I cancel the order I placed?")
    assert "contact-us.html" in sources(agent, "When are you open for phone calls?")
    index_in_sync(agent)


# -- admin ------------------------------------------------------------------------------

@pytest.fixture
def admin_client(demo) -> Client:
    client = Client()
    client.force_login(demo["admin"])
    return client


ADD = "/admin/runs/knowledgedocument/add/"


def upload(client: Client, agent: Agent, name: str, raw: bytes):
    return client.post(ADD, {"agent": agent.pk, "file": SimpleUploadedFile(name, raw)})


def test_admin_upload_indexes_the_file_lists_it_and_audits_it(admin_client, demo):
    agent = demo["team"].agents.get(slug="support-refunds")
    form = admin_client.get(ADD).content.decode()
    assert 'type="file"' in form and "Size limit: 1 MiB" in form
    resp = upload(admin_client, agent, "kettle-care.md", KETTLE)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    doc = KnowledgeDocument.objects.get(agent=agent, name="kettle-care.md")
    assert doc.origin == "upload" and doc.chunks.count() == 1
    event = AuditEvent.objects.get(action="knowledgedocument.created")
    assert event.team_id == demo["team"].pk and event.detail["after"]["name"] == "kettle-care.md"
    assert "content" not in event.detail["after"]

    page = admin_client.get("/admin/runs/knowledgedocument/?q=kettle").content.decode()
    assert "kettle-care.md" in page and "Kettle descaling" in page
    detail = admin_client.get(f"/admin/runs/knowledgedocument/{doc.pk}/change/")
    assert detail.status_code == 200 and "citric acid" in detail.content.decode()

    # a new version under the same name replaces it (from the add form or the change form)
    resp = admin_client.post(f"/admin/runs/knowledgedocument/{doc.pk}/change/",
                             {"file": SimpleUploadedFile("x.md", b"# Kettle\n\nNew text.")})
    assert resp.status_code == 302
    assert sources(agent, "citric acid limescale", 50).count("kettle-care.md") == 0
    resp = admin_client.post(f"/admin/runs/knowledgedocument/{doc.pk}/change/",
                             {"file": SimpleUploadedFile("x.txt", b"plain")})
    assert "upload a .md file to replace it" in resp.content.decode()

    resp = admin_client.post("/admin/runs/knowledgedocument/", {
        "action": "reindex", "_selected_action": [doc.pk]})
    assert resp.status_code == 302 and doc.chunks.count() == 1
    index_in_sync(agent)


@pytest.mark.parametrize(("name", "raw", "words"), [
    ("huge.md", b"# Huge\n\n" + b"x" * 3000, "a knowledge document may be at most"),
    ("photo.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks like a binary file"),
    ("sheet.xlsx", b"PK\x03\x04", "only Markdown (.md), plain text (.txt) and HTML"),
])
def test_admin_upload_errors_are_form_errors(admin_client, demo, settings, name, raw, words):
    settings.KNOWLEDGE_MAX_BYTES = 2048
    agent = demo["team"].agents.get(slug="support-refunds")
    before = KnowledgeDocument.objects.count()
    resp = upload(admin_client, agent, name, raw)
    assert resp.status_code == 200
    page = resp.content.decode()
    assert "errorlist" in page and words in page
    assert KnowledgeDocument.objects.count() == before


def test_the_agent_admin_inline_lists_its_documents_read_only(demo, rf):
    agent = demo["team"].agents.get(slug="support-refunds")
    inline = KnowledgeDocumentInline(Agent, site)
    request = rf.get("/admin/")
    request.user = demo["admin"]
    assert not inline.has_add_permission(request) and not inline.has_change_permission(request)
    assert not inline.can_delete and inline.show_change_link
    rows = inline.get_queryset(request).filter(agent=agent)
    assert rows.count() >= 30 and all(inline.chunk_count(row) >= 1 for row in rows)


# -- a run -------------------------------------------------------------------------------

@pytest.mark.usefixtures("celery_worker")
def test_a_document_uploaded_in_admin_is_retrieved_by_a_run_and_shown_on_its_escalation(
        admin_client, demo, data_dir):
    agent = demo["team"].agents.get(slug="support-refunds")
    resp = upload(admin_client, agent, "headphone-refunds.md",
                  b"# Headphone refunds\n\nRefunds for headphones (order 1042 and others) are "
                  b"approved by the audio team lead, usually the same day.")
    assert resp.status_code == 302

    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042, headphones")
    wait_status(run, "waiting_human")
    retrieval = run.steps.order_by("index").first()
    assert retrieval.kind == "retrieval"
    assert "headphone-refunds.md" in retrieval.result["documents"]
    esc = open_escalation(run)
    passage = next(d for d in esc.context if d["source"] == "headphone-refunds.md")
    assert passage["title"] == "Headphone refunds" and passage["score"] > 0

    operator = Client()
    operator.force_login(demo["operator"])
    page = operator.get(f"/escalations/{esc.pk}/").content.decode()
    assert 'data-testid="esc-context"' in page and "headphone-refunds.md" in page
    assert "Headphone refunds" in page and "approved by the audio team lead" in page
    assert f"{passage['score']:.2f}" in page

    # the other team's operator sees none of it
    outsider = Client()
    outsider.force_login(demo["outsider"])
    assert outsider.get(f"/escalations/{esc.pk}/").status_code == 404


@pytest.mark.usefixtures("celery_worker")
def test_a_run_indexes_its_agents_package_documents_when_they_are_missing(demo, data_dir):
    agent = demo["team"].agents.get(slug="support-refunds")
    KnowledgeDocument.objects.filter(agent=agent).delete()
    knowledge.forget_checks()
    run = submit(demo["team"], demo["operator"], "What is your refund policy?")
    wait_status(run, "succeeded", "waiting_human")
    retrieval = run.steps.order_by("index").first()
    assert retrieval.kind == "retrieval" and "refund-policy.md" in retrieval.result["documents"]
    assert KnowledgeDocument.objects.filter(agent=agent).count() >= 30
