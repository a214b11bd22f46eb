"""Knowledge documents and their chunks, indexed by the database's own full-text engine.

The tables are the same everywhere; the index is the vendor's (``runs/models/knowledge.py``):
Postgres gets a trigger that computes ``search`` (config ``english``, title A, text B), a
GIN index on it, and the statement triggers that keep ``runs_knowledgeterm`` (chunks per
word and agent) counted; SQLite gets an FTS5 table over the chunks (external content) and
the three triggers that keep it in sync. One migration for both: the vendor-specific part checks
``schema_editor.connection.vendor``.
"""

import django.contrib.postgres.search
import django.db.models.deletion
from django.db import migrations, models

POSTGRES_FORWARD = [
    """
    CREATE FUNCTION runs_knowledgechunk_search_vector() RETURNS trigger AS $$
    BEGIN
        NEW.search := setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')
                   || setweight(to_tsvector('english', coalesce(NEW.text, '')), 'B');
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER runs_knowledgechunk_search_vector
    BEFORE INSERT OR UPDATE OF title, text ON runs_knowledgechunk
    FOR EACH ROW EXECUTE FUNCTION runs_knowledgechunk_search_vector()
    """,
    # fastupdate off: documents are written rarely and searched at every run; a pending list
    # (until the next vacuum) would make every search after an upload scan it.
    "CREATE INDEX runs_knowledgechunk_search_gin ON runs_knowledgechunk USING gin (search) "
    "WITH (fastupdate = off)",
    # Each chunk counts once for each word (lexeme) in it, and once for the empty lexeme: the
    # agent's chunks in all. A word no chunk has any more goes.
    """
    CREATE FUNCTION runs_knowledgeterm_count() RETURNS trigger AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            UPDATE runs_knowledgeterm t SET chunks = greatest(t.chunks - o.n, 0)
            FROM (SELECT r.agent_id, v.lexeme, count(*) AS n
                  FROM old_rows r, unnest(r.search) v GROUP BY 1, 2
                  UNION ALL SELECT agent_id, '', count(*) FROM old_rows GROUP BY 1) o
            WHERE t.agent_id = o.agent_id AND t.lexeme = o.lexeme;
            DELETE FROM runs_knowledgeterm t
            USING (SELECT DISTINCT r.agent_id, v.lexeme FROM old_rows r, unnest(r.search) v
                   UNION SELECT DISTINCT agent_id, '' FROM old_rows) o
            WHERE t.agent_id = o.agent_id AND t.lexeme = o.lexeme AND t.chunks <= 0;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO runs_knowledgeterm (agent_id, lexeme, chunks)
            SELECT agent_id, lexeme, n FROM (
                SELECT r.agent_id, v.lexeme, count(*) AS n
                FROM new_rows r, unnest(r.search) v GROUP BY 1, 2
                UNION ALL SELECT agent_id, '', count(*) FROM new_rows GROUP BY 1
            ) counted ORDER BY 1, 2
            ON CONFLICT (agent_id, lexeme)
            DO UPDATE SET chunks = runs_knowledgeterm.chunks + EXCLUDED.chunks;
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER runs_knowledgeterm_insert AFTER INSERT ON runs_knowledgechunk
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION runs_knowledgeterm_count()
    """,
    """
    CREATE TRIGGER runs_knowledgeterm_delete AFTER DELETE ON runs_knowledgechunk
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION runs_knowledgeterm_count()
    """,
    """
    CREATE TRIGGER runs_knowledgeterm_update AFTER UPDATE ON runs_knowledgechunk
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION runs_knowledgeterm_count()
    """,
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS runs_knowledgeterm_insert ON runs_knowledgechunk",
    "DROP TRIGGER IF EXISTS runs_knowledgeterm_delete ON runs_knowledgechunk",
    "DROP TRIGGER IF EXISTS runs_knowledgeterm_update ON runs_knowledgechunk",
    "DROP FUNCTION IF EXISTS runs_knowledgeterm_count()",
    "DROP INDEX IF EXISTS runs_knowledgechunk_search_gin",
    "DROP TRIGGER IF EXISTS runs_knowledgechunk_search_vector ON runs_knowledgechunk",
    "DROP FUNCTION IF EXISTS runs_knowledgechunk_search_vector()",
]

SQLITE_TABLE = """
    CREATE VIRTUAL TABLE runs_knowledgechunk_fts USING fts5(
        title, text, content='runs_knowledgechunk', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )
"""
# The external-content pattern of the FTS5 documentation: a delete names the old values.
SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER runs_knowledgechunk_fts_insert AFTER INSERT ON runs_knowledgechunk BEGIN
        INSERT INTO runs_knowledgechunk_fts(rowid, title, text)
        VALUES (new.id, new.title, new.text);
    END
    """,
    """
    CREATE TRIGGER runs_knowledgechunk_fts_delete AFTER DELETE ON runs_knowledgechunk BEGIN
        INSERT INTO runs_knowledgechunk_fts(runs_knowledgechunk_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
    END
    """,
    """
    CREATE TRIGGER runs_knowledgechunk_fts_update AFTER UPDATE ON runs_knowledgechunk BEGIN
        INSERT INTO runs_knowledgechunk_fts(runs_knowledgechunk_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
        INSERT INTO runs_knowledgechunk_fts(rowid, title, text)
        VALUES (new.id, new.title, new.text);
    END
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS runs_knowledgechunk_fts_insert",
    "DROP TRIGGER IF EXISTS runs_knowledgechunk_fts_delete",
    "DROP TRIGGER IF EXISTS runs_knowledgechunk_fts_update",
    "DROP TABLE IF EXISTS runs_knowledgechunk_fts",
]


def _execute(schema_editor, statements):
    for sql in statements:
        schema_editor.execute(sql)


def create_index(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _execute(schema_editor, POSTGRES_FORWARD)
    elif vendor == "sqlite":
        _execute(schema_editor, [SQLITE_TABLE, *SQLITE_TRIGGERS])
        # chunks written before the index existed (none on a fresh database) are indexed too
        schema_editor.execute(
            "INSERT INTO runs_knowledgechunk_fts(runs_knowledgechunk_fts) VALUES ('rebuild')")


def drop_index(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _execute(schema_editor, POSTGRES_BACKWARD)
    elif vendor == "sqlite":
        _execute(schema_editor, SQLITE_BACKWARD)


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0013_agent_not_installed_reason'),
    ]

    operations = [
        migrations.CreateModel(
            name='KnowledgeDocument',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text='The file\'s name, e.g. refund-policy.md.', max_length=255)),
                ('title', models.CharField(max_length=300)),
                ('content', models.TextField(help_text='The document as plain text (markup removed).')),
                ('size_bytes', models.PositiveIntegerField(help_text='Size of the file as uploaded.')),
                ('checksum', models.CharField(help_text='SHA-256 of the file as uploaded.', max_length=64)),
                ('origin', models.CharField(choices=[('upload', 'uploaded in admin'), ('package', "shipped with the agent's package")], default='upload', max_length=10)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('agent', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='knowledge_documents', to='runs.agent')),
            ],
            options={
                'ordering': ['agent_id', 'name'],
                'constraints': [models.UniqueConstraint(fields=('agent', 'name'), name='knowledge_document_per_agent')],
            },
        ),
        migrations.CreateModel(
            name='KnowledgeChunk',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('ordinal', models.PositiveIntegerField()),
                ('title', models.CharField(max_length=300)),
                ('text', models.TextField()),
                ('search', django.contrib.postgres.search.SearchVectorField(editable=False, null=True)),
                ('agent', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='runs.agent')),
                ('document', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='chunks', to='runs.knowledgedocument')),
            ],
            options={
                'ordering': ['document_id', 'ordinal'],
                'constraints': [models.UniqueConstraint(fields=('document', 'ordinal'), name='knowledge_chunk_order')],
            },
        ),
        migrations.CreateModel(
            name='KnowledgeTerm',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('lexeme', models.TextField()),
                ('chunks', models.PositiveIntegerField()),
                ('agent', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='runs.agent')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('agent', 'lexeme'), name='knowledge_term_per_agent')],
            },
        ),
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
