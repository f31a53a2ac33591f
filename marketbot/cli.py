"""`marketbot` — one entry point for every process.

    marketbot up             all-in-one local mode: embedded servers if needed, migrations, gateway,
                             worker and beat in one terminal
    marketbot gateway        the webhook/polling gateway (HTTP_HOST:HTTP_PORT)
    marketbot worker         a Celery worker (--queues interactive,payments,outbound,maintenance)
    marketbot beat           the periodic scheduler (run exactly one)
    marketbot migrate        apply database migrations
    marketbot status         queue depths, workers, beat leader, oldest unpaid hold, dead letters
    marketbot dead-letters   list tasks that failed for good; `replay ID…` / `replay --all` re-runs them
    marketbot flower         Celery Flower (requires FLOWER_BASIC_AUTH)
    marketbot check-config   validate configuration and exit
    marketbot fake-telegram  run the local Telegram Bot API stand-in
    marketbot say TEXT       talk to the local bot through the stand-in (with `marketbot up`)
    marketbot demo-data      verified businesses with live offers in the demo city (idempotent)

Configuration comes only from environment variables (and `.env`); see .env.example.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence

from marketbot import lazy_aiogram
from marketbot.logs import configure_logging
from marketbot.settings import ConfigError, Settings, load_settings
from tasks.names import ALL_QUEUES, QUEUE_OUTBOUND


def _settings(*required: str) -> Settings:
    settings = load_settings()
    for field in required:
        settings.require(field)
    configure_logging(settings.log_level, fmt=settings.log_format, hash_key=settings.log_hash_key)
    return settings


def _pause_gc_for_start_up() -> None:
    """Start-up allocates a few hundred thousand long-lived objects (modules, classes, pydantic schemas) and
    hardly any garbage: the cyclic collector's passes over them are pure cost (~15% of a worker's start-up,
    measured in bench/memory_start.py). `_freeze_start_up_objects` turns it back on."""
    gc.disable()


def _freeze_start_up_objects() -> None:
    """Move everything start-up built into the permanent generation, then turn the collector back on.

    Later collections then never scan those objects again. In a prefork worker this matters twice: Celery
    runs a full `gc.collect()` before forking each child (~0.1-0.2 s each over the unfrozen heap), and
    children that never touch the inherited objects' GC headers keep sharing those pages with the parent
    (copy-on-write; the use `gc.freeze` is documented for). Start-up leaves ~2,000 garbage objects (measured):
    frozen with the rest, too few to matter.
    """
    gc.freeze()
    gc.enable()


def cmd_gateway(args: argparse.Namespace) -> int:
    settings = _settings("redis_url", "telegram_bot_token")
    if settings.public_base_url and not settings.telegram_webhook_secret:
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET: not set (required with PUBLIC_BASE_URL, Telegram sends it back)"
        )
    _pause_gc_for_start_up()
    from aiogram.methods import AnswerCallbackQuery
    from aiogram.types import Update
    from aiohttp import web

    from bot_gateway.app import create_app, new_event_loop

    # Every update is validated as an Update and most taps answered: build those before the first request.
    lazy_aiogram.warm_up(Update, AnswerCallbackQuery)
    _freeze_start_up_objects()
    polling = True if args.polling else None
    web.run_app(
        create_app(settings, polling=polling),
        host=settings.http_host,
        port=settings.http_port,
        print=None,
        shutdown_timeout=20,  # SIGTERM: stop accepting, let in-flight webhooks finish
        loop=new_event_loop(),
    )
    return 0


def worker_pool(queues: list[str]) -> str:
    """The pool a worker runs unless told otherwise: threads for the outbound queue alone.

    A send task is a few milliseconds of Python around a database transaction, a Redis call and the Bot
    API call, then it hands its chat back until the chat's next slot: it waits on the network, not the CPU.
    Threads share one process's connections and need no pipe to a parent, and measured against a prefork
    pool of the same size they sent ~25 msg/s where prefork sent ~15-20 (bench/outbound.py conditions, 2
    loaded cores). Other queues run handlers and payment flows: processes, with Celery's time limits (a
    thread pool can't enforce them).
    """
    return "threads" if queues == [QUEUE_OUTBOUND] else "prefork"


def _prepare_sender() -> list[type]:
    """Load the Bot API sender and build what it validates, in this (parent) process, before the pool forks,
    so every child shares it and a first send pays nothing extra: the methods it sends and the responses they
    come back as. Without the responses, each child's first sendMessage and first edit built
    `Response[Message]` and `Response[Message | bool]` (~0.25 s). Message first: the responses then reuse its
    schema instead of each building a copy (~0.1 s for all of it). Returns the models built.
    """
    from aiogram.methods.base import Response
    from aiogram.types import Message

    import tasks.outbound  # noqa: F401 - the send task's code; its entrypoint imports it on first use
    from tasks.adapters.telegram import METHODS

    lazy_aiogram.warm_up(Message, *METHODS.values())
    # Built as parametrized: the same classes aiogram's session validates each answer with.
    responses = [Response[method.__returning__] for method in METHODS.values()]  # type: ignore[name-defined]
    return [Message, *METHODS.values(), *responses]


def cmd_worker(args: argparse.Namespace) -> int:
    _settings("database_url", "redis_url", "telegram_bot_token")
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(ALL_QUEUES))
    if unknown:
        raise ConfigError(f"--queues: unknown queue(s) {', '.join(unknown)}; known: {', '.join(ALL_QUEUES)}")
    _pause_gc_for_start_up()
    from celery.utils.nodenames import default_nodename, host_format

    from tasks.app import app

    # Only send tasks (the outbound queue) talk to Telegram: other workers never load aiogram.
    # Kept for the worker's life: pydantic holds parametrized models (the responses) only weakly.
    sender_models = _prepare_sender() if QUEUE_OUTBOUND in queues else []
    # The worker itself, as `celery worker` builds it, without Celery's click CLI: importing that costs ~1 s
    # of start-up and ~24 MB in every process of the pool, for options we don't offer.
    # No mingle (a 1 s wait at every start for other workers' revoked-task lists; we never revoke tasks) and
    # no gossip (worker-to-worker events nothing of ours uses); Flower still gets task and heartbeat events.
    worker = app.Worker(
        hostname=host_format(default_nodename(args.hostname)),
        queues=queues,
        concurrency=args.concurrency,
        pool_cls=args.pool or worker_pool(queues),
        loglevel=args.loglevel,
        without_mingle=True,
        without_gossip=True,
    )
    # After the Worker is built (that imports the task modules), before `start` forks the pool.
    _freeze_start_up_objects()
    worker.start()
    del sender_models
    return int(worker.exitcode or 0)


def cmd_beat(args: argparse.Namespace) -> int:
    settings = _settings("redis_url")
    import signal

    import redis

    from marketbot.beat_leader import BeatLeader
    from tasks.app import app

    # Exactly one beat schedules: a second one waits here until the first stops or dies.
    leader = BeatLeader(redis.Redis.from_url(settings.require("redis_url")))
    lost = False

    def on_lost() -> None:
        nonlocal lost
        lost = True
        os.kill(os.getpid(), signal.SIGTERM)  # beat shuts down cleanly; a supervisor restarts us to wait

    def stop(_signum: int, _frame: object) -> None:
        # Unwinds through `finally`, which hands the lease back at once; 3 tells a supervisor we lost it.
        raise SystemExit(3 if lost else 0)

    signal.signal(signal.SIGTERM, stop)
    if not leader.wait_until_leader():
        return 0
    leader.keep_renewing(on_lost)
    os.makedirs(settings.data_dir, exist_ok=True)
    schedule_file = os.path.join(settings.data_dir, "celerybeat-schedule")
    try:
        app.start(argv=["beat", "--loglevel", args.loglevel, "-s", schedule_file])
    finally:
        leader.release()
    return 3 if lost else 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = _settings("redis_url", "database_url")
    from marketbot.status import as_json, gather, render

    status = gather(settings)
    print(as_json(status) if args.json else render(status))
    return 1 if status.problems else 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    settings = _settings("database_url")
    from core.clock import utcnow
    from db.session import make_engine, make_session_factory
    from db.uow import SqlAlchemyUnitOfWork
    from tasks.dead_letters import replay

    factory = make_session_factory(make_engine(settings.sqlalchemy_url))

    def uow() -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(factory)

    if args.action == "list":
        with uow() as u:
            letters = u.dead_letters.open(limit=args.limit)
            if not letters:
                print("no dead letters")
                return 0
            print(f"{'id':>6}  {'failed at (UTC)':19}  {'task':45}  {'error':24}  correlation id")
            for d in letters:
                print(
                    f"{d.id:>6}  {d.failed_at:%Y-%m-%d %H:%M:%S}  {d.task_name:45}  "
                    f"{d.exception_type:24}  {d.correlation_id or '-'}"
                )
                if args.verbose:
                    print(f"        args={d.args} kwargs={d.kwargs} retries={d.retries}")
                    print(f"        {d.exception_message or ''}")
        return 0
    from tasks.app import app

    def send(name: str, task_args: list[object], kwargs: dict[str, object]) -> str:
        return str(app.send_task(name, args=task_args, kwargs=kwargs).id)

    if args.all:
        with uow() as u:
            ids = [d.id for d in u.dead_letters.open(limit=10_000)]
    else:
        ids = args.ids
    if not ids:
        raise ConfigError("dead-letters replay: give dead letter ids, or --all")
    failed = 0
    for dead_letter_id in ids:
        new_id = replay(uow, dead_letter_id, send_task=send, now=utcnow())
        if new_id is None:
            print(f"{dead_letter_id}: not found or already replayed")
            failed += 1
        else:
            print(f"{dead_letter_id}: replayed as task {new_id}")
    return 1 if failed else 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    settings = _settings("database_url")
    from db.migrate import upgrade

    upgrade(settings.sqlalchemy_url)
    print("database migrated to head")
    return 0


def cmd_flower(_args: argparse.Namespace) -> int:
    settings = _settings("redis_url")
    auth = settings.flower_basic_auth
    if not auth or ":" not in auth:
        raise ConfigError(
            "FLOWER_BASIC_AUTH: not set (user:password); Flower shows task arguments, keep it private"
        )
    from tasks.app import app

    app.start(
        argv=[
            "flower",
            f"--basic-auth={auth}",
            f"--port={settings.flower_port}",
            f"--address={settings.flower_address}",
        ]
    )
    return 0


def cmd_check_config(_args: argparse.Namespace) -> int:
    settings = load_settings()
    print("configuration OK")
    print(f"  telegram api:   {settings.telegram_api_base_url}")
    print(f"  telegram token: {'set' if settings.telegram_bot_token else 'not set'}")
    print(
        "  mode:           "
        + (f"webhook at {settings.public_base_url}" if settings.public_base_url else "long polling")
    )
    print(f"  database:       {'set' if settings.database_url else 'embedded (marketbot up)'}")
    print(f"  redis:          {'set' if settings.redis_url else 'embedded (marketbot up)'}")
    print(f"  admins:         {len(settings.admin_telegram_ids)}")
    return 0


def cmd_fake_telegram(args: argparse.Namespace) -> int:
    from marketbot.fakes.telegram import main as fake_main

    return fake_main(["--host", args.host, "--port", str(args.port)])


def cmd_say(args: argparse.Namespace) -> int:
    from marketbot.say import say

    share = "photo" if args.photo else "location" if args.location else "contact" if args.contact else None
    text = args.location or args.contact or args.text
    if share is None and (args.text is None) == (args.press is None):
        raise ConfigError(
            "say: give a message text, --press DATA, --photo, --location LAT,LON or --contact PHONE"
        )
    return say(text, press=args.press, user=args.user, fake_url=args.telegram, share=share)


def cmd_up(args: argparse.Namespace) -> int:
    from marketbot.local import run_local

    return run_local(worker_concurrency=args.concurrency, demo_data=args.demo_data)


def cmd_demo_data(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level, fmt=settings.log_format, hash_key=settings.log_hash_key)
    from datetime import UTC, datetime

    from marketbot.demo_data import PhotoUploader, seed

    database_url = settings.database_url
    if not database_url:
        # The embedded server `marketbot up` runs (joined, not restarted: it keeps running for `up`).
        from marketbot.embedded import EmbeddedServers

        database_url = EmbeddedServers(settings.data_dir).start_postgres()
    from marketbot.settings import normalize_database_url

    # Photos are uploaded through the Bot API the workers use: by default the local stand-in of `make run`.
    token = settings.telegram_bot_token if args.telegram is None else None
    api = settings.telegram_api_base_url if token else (args.telegram or "http://127.0.0.1:8081")
    from marketbot.local import LOCAL_BOT_TOKEN

    uploader = PhotoUploader(api, token or LOCAL_BOT_TOKEN)
    try:
        summary = seed(normalize_database_url(database_url), uploader, now=datetime.now(UTC))
    except Exception as exc:
        print(f"marketbot: demo data failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        uploader.close()
    print(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marketbot", description="MarketBot: surplus food on Telegram.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run everything locally (embedded PostgreSQL/Redis when not configured)")
    up.add_argument("--concurrency", type=int, default=2)
    up.add_argument(
        "--demo-data",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="seed the demo city (default: only into the embedded database when Telegram is the stand-in)",
    )
    up.set_defaults(func=cmd_up)
    gw = sub.add_parser("gateway", help="run the Telegram/Stripe gateway")
    gw.add_argument("--polling", action="store_true", help="force long polling even with PUBLIC_BASE_URL set")
    gw.set_defaults(func=cmd_gateway)
    wk = sub.add_parser("worker", help="run a Celery worker")
    wk.add_argument("--queues", default=",".join(ALL_QUEUES))
    wk.add_argument("--concurrency", type=int, default=2)
    wk.add_argument(
        "--pool",
        choices=["prefork", "threads"],
        default=None,
        help="processes, or threads (default for a worker of the outbound queue alone: its tasks wait on "
        "the network and Telegram's rate, and never sleep on one chat); prefork otherwise",
    )
    wk.add_argument("--hostname", default=None)
    wk.add_argument("--loglevel", default="INFO")
    wk.set_defaults(func=cmd_worker)
    bt = sub.add_parser("beat", help="run the periodic scheduler (exactly one per deployment)")
    bt.add_argument("--loglevel", default="INFO")
    bt.set_defaults(func=cmd_beat)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    st = sub.add_parser("status", help="queue depths, workers, beat leader, oldest hold, dead letters")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_status)
    dl = sub.add_parser("dead-letters", help="list or replay tasks that failed for good")
    dl_sub = dl.add_subparsers(dest="action")
    dl.set_defaults(func=cmd_dead_letters, action="list", limit=50, verbose=False)
    dl_list = dl_sub.add_parser("list", help="open dead letters, newest first (the default)")
    dl_list.add_argument("--limit", type=int, default=50)
    dl_list.add_argument("-v", "--verbose", action="store_true", help="show arguments and error messages")
    dl_replay = dl_sub.add_parser("replay", help="publish the tasks again with the same arguments")
    dl_replay.add_argument("ids", nargs="*", type=int)
    dl_replay.add_argument("--all", action="store_true", help="replay every open dead letter")
    sub.add_parser("flower", help="run Flower (requires FLOWER_BASIC_AUTH)").set_defaults(func=cmd_flower)
    sub.add_parser("check-config", help="validate configuration").set_defaults(func=cmd_check_config)
    ft = sub.add_parser("fake-telegram", help="run the local Telegram Bot API stand-in")
    ft.add_argument("--host", default="127.0.0.1")
    ft.add_argument("--port", type=int, default=8081)
    ft.set_defaults(func=cmd_fake_telegram)
    say = sub.add_parser("say", help="talk to the local bot through the Telegram stand-in (make run)")
    say.add_argument("text", nargs="?")
    say.add_argument("--press", help="press an inline button by its callback data")
    say.add_argument("--photo", action="store_true", help="send a photo")
    say.add_argument("--location", metavar="LAT,LON", help="share a location")
    say.add_argument("--contact", metavar="PHONE", help="share your own phone number")
    say.add_argument("--user", type=int, default=1001, help="which simulated Telegram user you are")
    say.add_argument("--telegram", default="http://127.0.0.1:8081", help="the stand-in's base URL")
    say.set_defaults(func=cmd_say)
    demo = sub.add_parser("demo-data", help="verified businesses with live offers in the demo city")
    demo.add_argument(
        "--telegram",
        metavar="URL",
        help="Bot API to upload the offer photos to (default: TELEGRAM_API_BASE_URL with TELEGRAM_BOT_TOKEN "
        "set, else the stand-in of `make run` at http://127.0.0.1:8081)",
    )
    demo.set_defaults(func=cmd_demo_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"marketbot: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
