"""Content-syndication signals: is the downloaded asset on one of our topics, and did the lead follow up?

A syndicated lead arrives because a publisher's audience downloaded one of our assets. What tells
sales whether it is worth a call is (1) whether the asset is about something we sell, and (2)
what the lead did on its own after the download. Both are read from the lead's activities at or
before the scoring time ``as_of``; the behavioural signals look back ``WINDOW_DAYS`` (90), the
same window firr-base's MQL gate uses, so a year-old download does not keep a lead qualified.

Signals (all present for every lead, zero/false when nothing happened):

- ``syndication.downloads_90d``: content downloads in the window.
- ``syndication.top_funnel_downloads_90d``: of those, top-funnel assets. A download is top-funnel
  unless its ``stage`` (or ``funnel_stage``) property names a later stage (middle, mofu,
  consideration, bottom, bofu, decision): syndicated assets are awareness content by design, so
  only an explicitly later-stage asset (a pricing guide, an ROI calculator) is excluded.
- ``syndication.topic_match`` / ``syndication.topics_matched``: whether any download in the window
  is about a topic of the rulepacks' ``[vocabulary] topics``, and how many distinct topics matched.
  A topic matches as whole words (a trailing plural s/es allowed) in the download's ``topic`` /
  ``topics`` / ``asset`` / ``title`` / ``name`` / ``url`` properties, case and punctuation ignored,
  so "lead scoring" matches "The Lead Scoring Playbook" and "/resources/lead-scoring-playbook".
- ``syndication.relevant_downloads_90d``: top-funnel downloads that match a topic.
- ``syndication.nurture_clicks_90d``: email clicks after the lead's first download (the follow-up
  nurture it was enrolled in); a click tagged with another ``campaign_type`` (an event invitation,
  a product update) does not count.
- ``syndication.service_page_after_download``: a ``service_page_visit`` after the first download.
- ``syndication.follow_ups_90d``: the lead's own engagement after the first download: email clicks
  and replies, and site, webinar, high-intent and hand-raise activities (tiers low, medium, high
  and readiness), other than further downloads. Email opens do not count (image prefetching opens
  emails nobody read).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from leadscore.plugin import (
    Activity,
    ExtractContext,
    Lead,
    Signal,
    SignalSpec,
    activity_tiers,
    day_text,
    per_vocabulary,
    reads_signals,
)

WINDOW_DAYS = 90
LATER_STAGES = frozenset({"middle", "mid", "mofu", "middle_of_funnel", "consideration", "bottom", "bofu",
                          "bottom_of_funnel", "decision"})
TOPIC_PROPERTIES = ("topic", "topics", "asset", "title", "name", "url")
FOLLOW_UP_TIERS = frozenset({"low", "medium", "high", "readiness"})
FOLLOW_UP_EMAIL = frozenset({"email_click", "email_reply"})

PROVIDES = (
    SignalSpec("syndication.downloads_90d", "int", "content downloads in the last 90 days"),
    SignalSpec("syndication.top_funnel_downloads_90d", "int",
               "top-funnel downloads in the last 90 days (no later-stage `stage` property)"),
    SignalSpec("syndication.topic_match", "bool", "a download in the last 90 days is about one of the [vocabulary] topics"),
    SignalSpec("syndication.topics_matched", "int", "distinct [vocabulary] topics the last 90 days' downloads are about"),
    SignalSpec("syndication.relevant_downloads_90d", "int", "top-funnel downloads on one of the topics, last 90 days"),
    SignalSpec("syndication.nurture_clicks_90d", "int", "nurture email clicks after the first download, last 90 days"),
    SignalSpec("syndication.service_page_after_download", "bool",
               "a service page visit after the first download, in the last 90 days"),
    SignalSpec("syndication.follow_ups_90d", "int",
               "the lead's own engagement after the first download (not opens, not more downloads), last 90 days"),
)
NAMES = frozenset(spec.name for spec in PROVIDES)

# Most leads never download anything: their signals are the same zeros, built once.
NO_DOWNLOAD = tuple(
    Signal(spec.name, False if spec.type == "bool" else 0, None, "no content download before the scoring time")
    for spec in PROVIDES
)

_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """Lower case, every run of punctuation/whitespace a single space: "Lead-Scoring_Guide" -> "lead scoring guide"."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def _topic_pattern(topic: str) -> re.Pattern[str] | None:
    words = normalise(topic)
    if not words:
        return None
    return re.compile(r"(?<![a-z0-9])" + re.escape(words) + r"(?:s|es)?(?![a-z0-9])")


def _compile_topics(vocabulary: Mapping[str, Any]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    compiled = []
    for topic in sorted(str(t) for t in vocabulary.get("topics") or ()):
        pattern = _topic_pattern(topic)
        if pattern is not None:
            compiled.append((topic, pattern))
    return tuple(compiled)


# Compiled once per vocabulary object (the engine keeps one per run), like the built-in extractors.
topic_patterns = per_vocabulary(_compile_topics)


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, str):
                yield item


def asset_text(activity: Activity) -> str:
    """The words describing a downloaded asset, from its properties."""
    props = activity.properties
    return " ".join(normalise(t) for key in TOPIC_PROPERTIES for t in _texts(props.get(key)))


def topics_of(activity: Activity, patterns: Iterable[tuple[str, re.Pattern[str]]]) -> list[str]:
    text = asset_text(activity)
    return [topic for topic, pattern in patterns if pattern.search(text)] if text else []


def is_top_funnel(activity: Activity) -> bool:
    props = activity.properties
    stage = props.get("stage", props.get("funnel_stage"))
    return not (isinstance(stage, str) and normalise(stage).replace(" ", "_") in LATER_STAGES)




def _is_nurture(click: Activity) -> bool:
    campaign = click.properties.get("campaign_type")
    return campaign is None or (isinstance(campaign, str) and normalise(campaign) == "nurture")


def _label(activity: Activity) -> str:
    props = activity.properties
    name = props.get("asset") or props.get("title") or props.get("url")
    day = day_text(activity.at)
    return f"{activity.type} on {day} ({name})" if isinstance(name, str) and name else f"{activity.type} on {day}"


@reads_signals()
def extract(lead: Lead, ctx: ExtractContext) -> Iterator[Signal]:
    if ctx.wanted is not None and not (ctx.wanted & NAMES):
        return
    as_of = ctx.as_of
    downloads = [a for a in lead.activities if a.type == "content_download" and a.at <= as_of]
    if not downloads:
        yield from NO_DOWNLOAD
        return
    since = as_of - timedelta(days=WINDOW_DAYS)
    first_download = min(a.at for a in downloads)
    recent = sorted((a for a in downloads if a.at >= since), key=lambda a: a.at)
    patterns = topic_patterns(ctx.vocabulary)

    top_funnel = [a for a in recent if is_top_funnel(a)]
    matched: dict[str, Activity] = {}
    relevant: list[Activity] = []
    for activity in recent:
        found = topics_of(activity, patterns)
        for topic in found:
            matched[topic] = activity
        if found and is_top_funnel(activity):
            relevant.append(activity)

    yield _count("syndication.downloads_90d", recent, "content downloads")
    yield _count("syndication.top_funnel_downloads_90d", top_funnel, "top-funnel downloads")
    topic_evidence = "; ".join(f"{t!r} in {_label(a)}" for t, a in sorted(matched.items())) or "no download on our topics"
    last_match = max((a.at for a in matched.values()), default=None)
    yield Signal("syndication.topic_match", bool(matched), last_match, topic_evidence)
    yield Signal("syndication.topics_matched", len(matched), last_match, topic_evidence)
    yield _count("syndication.relevant_downloads_90d", relevant, "top-funnel downloads on our topics")

    after = sorted((a for a in lead.activities if first_download < a.at <= as_of and a.at >= since),
                   key=lambda a: a.at)
    tiers = activity_tiers(ctx.vocabulary)
    clicks = [a for a in after if a.type == "email_click" and _is_nurture(a)]
    service = [a for a in after if a.type == "service_page_visit"]
    follow_ups = [a for a in after if a.type != "content_download"
                  and (a.type in FOLLOW_UP_EMAIL or tiers.get(a.type) in FOLLOW_UP_TIERS)]
    yield _count("syndication.nurture_clicks_90d", clicks, "nurture email clicks after the download")
    yield Signal("syndication.service_page_after_download", bool(service), service[-1].at if service else None,
                 _label(service[-1]) if service else "no service page visit after the download")
    yield _count("syndication.follow_ups_90d", follow_ups, "follow-up actions after the download")


def _count(name: str, activities: list[Activity], what: str) -> Signal:
    if not activities:
        return Signal(name, 0, None, f"no {what} in the last {WINDOW_DAYS} days")
    last = activities[-1]
    return Signal(name, len(activities), last.at, f"{len(activities)} {what}, last: {_label(last)}")


def _props(text: str | None) -> dict[str, Any]:
    import json

    return json.loads(text) if text else {}


def _stub(props_text: str | None) -> Activity:
    from datetime import datetime, timezone

    # Only the properties matter to the helpers below; the type and time are not read.
    return Activity("content_download", datetime(1970, 1, 1, tzinfo=timezone.utc), _props(props_text))


# --- the columnar form ---------------------------------------------------------------------------
#
# In SQL alone (an exported query, ``leadscore sql``) the property helpers below equal their Python
# functions on plain properties: printable ASCII, no escapes but \" \\ \/ (an odd run of backslashes
# before another character starts one), strings (or null) under the keys they read. A lead with
# another activity is marked inexact (``ctx.exact_only_if``).
UNTRUSTED_PROPS = (r'[^ -~]|(^|[^\\])(\\\\)*\\[^"\\/]|"stage" *: *null|"(topic|topics|asset|title|name|url)" *: *\['
                   r'|"(asset|title|url)" *: *[^" n]')


def _sql_string(q, props, key: str):
    """The string under ``key`` of the properties text (NULL when absent or not a string)."""
    return q.case([(q.json_kind(q.json_at(props, key)).eq(q.lit("VARCHAR")), q.json_str(props, key))])


def _sql_normalise(q, text):
    """:func:`normalise` on printable ASCII."""
    from sqlglot import exp

    lowered = exp.RegexpReplace(this=q.fn("lower", text), expression=q.lit("[^a-z0-9]+"), replacement=q.lit(" "),
                                modifiers=q.lit("g"))
    return exp.Trim(this=lowered)


def _sql_asset_text(q, props):
    """:func:`asset_text`: the words of the string properties, joined by spaces."""
    from sqlglot import exp

    # Each string present as " " + its words, the first space dropped (CONCAT_WS is not NULL-skipping everywhere).
    parts = [q.coalesce(q.concat(q.lit(" "), _sql_normalise(q, _sql_string(q, props, key))), q.lit(""))
             for key in TOPIC_PROPERTIES]
    return exp.Substring(this=q.concat(*parts), start=q.lit(2))


def _sql_top_funnel(q, props):
    """:func:`is_top_funnel`: the ``stage`` property when present, else ``funnel_stage``."""
    from sqlglot import exp

    stage = q.case([(q.not_null(q.json_at(props, "stage")), _sql_string(q, props, "stage"))],
                   _sql_string(q, props, "funnel_stage"))
    named = exp.Replace(this=_sql_normalise(q, stage), expression=q.lit(" "), replacement=q.lit("_"))
    return q.not_(q.coalesce(q.in_(named, sorted(LATER_STAGES)), exp.false()))


def _sql_nurture(q, props):
    """:func:`_is_nurture`: no ``campaign_type`` (or null), or one that reads "nurture"."""
    from sqlglot import exp

    value = q.json_at(props, "campaign_type")
    kind = q.json_kind(value)
    return q.case([(q.or_(q.is_null(value), kind.eq(q.lit("NULL"))), exp.true()),
                   (kind.eq(q.lit("VARCHAR")),
                    q.coalesce(_sql_normalise(q, q.json_str(props, "campaign_type")).eq(q.lit("nurture")), exp.false()))],
                  exp.false())


def _sql_name(q, props):
    """The asset's name in a label: the first non-empty string of ``asset``, ``title``, ``url``."""
    from sqlglot import exp

    names = [_sql_string(q, props, key) for key in ("asset", "title", "url")]
    return q.case([(q.and_(q.not_null(n), exp.NEQ(this=n, expression=q.lit(""))), n) for n in names])


def _name_of(p: str | None) -> str | None:
    props = _props(p)
    name = props.get("asset") or props.get("title") or props.get("url")
    return name if isinstance(name, str) and name else None


def _found(q, padded, words):
    """Whether ``words`` (or their plural with s/es) stand as whole words in ``padded`` (the asset's
    words, :func:`asset_text`, between spaces): the lookarounds of :func:`_topic_pattern`, on text of
    letters, digits and spaces only."""
    from sqlglot import exp

    return q.or_(*(exp.GT(this=exp.StrPosition(this=padded, substr=q.concat(q.lit(" "), words, q.lit(end + " "))),
                          expression=q.lit(0)) for end in ("", "s", "es")))


def columnar(ctx):
    """These signals for a batch of leads, as SQL (the columnar engine's form of :func:`extract`).

    Windows, counts, "last" activities and texts are SQL; the topics of a download, whether it is
    top-funnel, whether a click is a nurture click and an asset's name are this module's own
    helpers (once per distinct properties object). An exported query (``ctx.portable``) has SQL
    forms of the helpers instead: the topics are found in the asset's words by a join with the
    topics as a constant relation.
    """
    from leadscore.columnar.api import day_text, emit, lookup, q
    from sqlglot import exp

    if not (ctx.wanted & NAMES):
        return None
    patterns = topic_patterns(ctx.vocabulary)
    tiers = activity_tiers(ctx.vocabulary)
    top = ctx.udf("ls_synd_top", lambda p: is_top_funnel(_stub(p)), ("VARCHAR",), "BOOLEAN", nulls=True,
                  portable=lambda p: _sql_top_funnel(q, p))
    nurture = ctx.udf("ls_synd_nurture", lambda p: _is_nurture(_stub(p)), ("VARCHAR",), "BOOLEAN", nulls=True,
                      portable=lambda p: _sql_nurture(q, p))
    name = ctx.udf("ls_synd_name", _name_of, ("VARCHAR",), "VARCHAR", nulls=True, portable=lambda p: _sql_name(q, p))
    ctx.exact_only_if(q.not_(exp.RegexpLike(this=q.col("props"), expression=q.lit(UNTRUSTED_PROPS))))
    as_of, since = ctx.as_of_us, ctx.as_of_us - WINDOW_DAYS * 86_400_000_000
    t, at, pos, props = q.col("type"), q.col("at"), q.col("pos"), q.col("props")
    label = q.concat(t, q.lit(" on "), day_text(at),
                     q.coalesce(q.concat(q.lit(" ("), name(props), q.lit(")")), q.lit("")))
    follow = q.and_(t.neq(q.lit("content_download")),
                    q.or_(q.in_(t, sorted(FOLLOW_UP_EMAIL)),
                          q.in_(t, sorted(x for x, tier in tiers.items() if tier in FOLLOW_UP_TIERS))))
    is_dl = t.eq(q.lit("content_download"))
    in_window = q.and_(is_dl, exp.GTE(this=at, expression=q.lit(since)))
    words = {topic: normalise(topic) for topic, _ in patterns}
    if ctx.portable:
        # SQL alone: the asset's words between spaces, each topic looked for in them (below).
        about = q.concat(q.lit(" "), _sql_asset_text(q, props), q.lit(" "))
    else:
        # The engine: the topics found by this module's own topics_of, once per distinct properties object.
        about = ctx.udf("ls_synd_topics", lambda p: topics_of(_stub(p), patterns), ("VARCHAR",), "VARCHAR[]",
                        nulls=True)(props)
    acts = (q.select(q.col("k"), t, at, pos, label.as_("label"), is_dl.as_("dl"),
                     exp.Window(this=q.fn("min", q.case([(is_dl, at)])), partition_by=[q.col("k")]).as_("first_dl"),
                     q.case([(in_window, top(props))]).as_("top"),
                     q.case([(in_window, about)]).as_("about"),
                     q.case([(t.eq(q.lit("email_click")), nurture(props))]).as_("nurture"),
                     follow.as_("follow"))
            .from_(q.table(ctx.activities)).where(exp.LTE(this=at, expression=q.lit(as_of))))
    recent = q.and_(q.col("dl"), exp.GTE(this=at, expression=q.lit(since)))
    after = q.and_(exp.GT(this=at, expression=q.col("first_dl")), exp.GTE(this=at, expression=q.lit(since)))
    if ctx.portable:
        has_topic = q.or_(*(_found(q, q.col("about"), q.lit(w)) for w in words.values()))
    else:
        has_topic = exp.GT(this=q.fn("len", q.coalesce(q.col("about"), exp.Array(expressions=[]))),
                           expression=q.lit(0))
    groups = {
        "recent": recent,
        "top": q.and_(recent, q.coalesce(q.col("top"), exp.false())),
        "relevant": q.and_(recent, q.coalesce(q.col("top"), exp.false()), has_topic),
        "clicks": q.and_(after, t.eq(q.lit("email_click")), q.coalesce(q.col("nurture"), exp.false())),
        "service": q.and_(after, t.eq(q.lit("service_page_visit"))),
        "follow": q.and_(after, q.col("follow")),
    }

    def last(value, cond):
        # the value of the latest activity (by position) meeting ``cond``: NULL keys are skipped
        return q.fn("arg_max", q.case([(cond, value)]), q.case([(cond, pos)]))

    aggs: list[exp.Expression] = [q.col("k"), q.fn("max", q.cast(q.col("dl"), "INTEGER")).as_("any_dl")]
    for key, cond in groups.items():
        aggs.append(q.fn("sum", q.case([(cond, q.lit(1))], q.lit(0))).as_(f"{key}_n"))
        aggs.append(last(q.col("label"), cond).as_(f"{key}_label"))
        aggs.append(last(at, cond).as_(f"{key}_at"))
    per_lead = q.select(*aggs).from_(acts.subquery("a")).group_by(q.col("k"))
    p, tp = (lambda c: q.col(c, "p")), (lambda c: q.col(c, "tp"))
    if words:
        # Topics: each download in the window with each topic it is about ...
        a = lambda c: q.col(c, "a0")  # noqa: E731
        in_recent = q.and_(a("dl"), exp.GTE(this=a("at"), expression=q.lit(since)))
        if ctx.portable:  # ... a join with the topics as a constant relation (topic, its words)
            topic_table = exp.Values(
                expressions=[exp.Tuple(expressions=[q.lit(topic), q.lit(w)]) for topic, w in words.items()],
                alias=exp.TableAlias(this=q.ident("tw"), columns=[q.ident("topic"), q.ident("words")]))
            found = (q.select(a("k"), a("pos"), a("at"), a("label"), q.col("topic", "tw"))
                     .from_(acts.subquery("a0"))
                     .join(topic_table, on=q.and_(in_recent, _found(q, a("about"), q.col("words", "tw")))))
        else:  # ... the topics found, unnested
            found = (q.select(a("k"), a("pos"), a("at"), a("label"), q.fn("unnest", a("about")).as_("topic"))
                     .from_(acts.subquery("a0")).where(in_recent))
        # ... and the last such download for each topic.
        per_topic = (q.select(q.col("k"), q.col("topic"), q.fn("arg_max", q.col("label"), pos).as_("label"),
                              q.fn("arg_max", at, pos).as_("at"))
                     .from_(found.subquery("u")).group_by(q.col("k"), q.col("topic")))
        shown = q.concat(lookup(q.col("topic"), {topic: repr(topic) for topic in words}, exp.null()), q.lit(" in "),
                         q.col("label"))
        ordered = exp.WithinGroup(this=exp.ArrayAgg(this=shown), expression=exp.Order(
            expressions=[exp.Ordered(this=q.text_order(q.col("topic")))]))
        topic_rows = (q.select(q.col("k"), exp.Count(this=exp.Star()).as_("n"), q.fn("max", at).as_("last"),
                               q.fn("array_to_string", ordered, q.lit("; ")).as_("ev"))
                      .from_(per_topic.subquery("pt")).group_by(q.col("k")))
        matched, topic_last, topic_text = q.coalesce(tp("n"), q.lit(0)), tp("last"), tp("ev")
    else:
        matched, topic_last, topic_text = q.lit(0), q.cast(exp.null(), "BIGINT"), q.cast(exp.null(), "VARCHAR")
    none_yet = "no content download before the scoring time"
    some = exp.GT(this=q.coalesce(p("any_dl"), q.lit(0)), expression=q.lit(0))

    def counted(signal: str, key: str, what: str) -> list[exp.Expression]:
        n = q.coalesce(p(f"{key}_n"), q.lit(0))
        has = exp.GT(this=n, expression=q.lit(0))
        return emit(signal, q.case([(some, q.cast(n, "BIGINT"))], q.lit(0)), q.case([(q.and_(some, has), p(f"{key}_at"))]),
                    q.case([(q.not_(some), q.lit(none_yet)),
                            (has, q.concat(q.cast(n, "VARCHAR"), q.lit(f" {what}, last: "), p(f"{key}_label")))],
                           q.lit(f"no {what} in the last {WINDOW_DAYS} days")))

    topic_ev = q.case([(q.not_(some), q.lit(none_yet)), (exp.GT(this=matched, expression=q.lit(0)), topic_text)],
                      q.lit("no download on our topics"))
    topic_at = q.case([(some, topic_last)])
    service = q.coalesce(p("service_n"), q.lit(0))
    columns = [q.col("k", "l").as_("k")]
    columns += counted("syndication.downloads_90d", "recent", "content downloads")
    columns += counted("syndication.top_funnel_downloads_90d", "top", "top-funnel downloads")
    columns += emit("syndication.topic_match", q.case([(some, exp.GT(this=matched, expression=q.lit(0)))], exp.false()),
                    topic_at, topic_ev)
    columns += emit("syndication.topics_matched", q.case([(some, q.cast(matched, "BIGINT"))], q.lit(0)), topic_at, topic_ev)
    columns += counted("syndication.relevant_downloads_90d", "relevant", "top-funnel downloads on our topics")
    columns += counted("syndication.nurture_clicks_90d", "clicks", "nurture email clicks after the download")
    columns += emit("syndication.service_page_after_download",
                    q.case([(some, exp.GT(this=service, expression=q.lit(0)))], exp.false()),
                    q.case([(q.and_(some, exp.GT(this=service, expression=q.lit(0))), p("service_at"))]),
                    q.case([(q.not_(some), q.lit(none_yet)), (exp.GT(this=service, expression=q.lit(0)), p("service_label"))],
                           q.lit("no service page visit after the download")))
    columns += counted("syndication.follow_ups_90d", "follow", "follow-up actions after the download")
    select = (q.select(*columns).from_(q.table(ctx.leads, "l"))
              .join(per_lead.subquery("p"), on=q.col("k", "l").eq(q.col("k", "p")), join_type="left"))
    if words:
        select = select.join(topic_rows.subquery("tp"), on=q.col("k", "l").eq(q.col("k", "tp")), join_type="left")
    return select
