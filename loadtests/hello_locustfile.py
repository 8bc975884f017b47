"""The framework's floor: users that pace themselves exactly like the simulated listeners
(same think time, same schedule, same random start phase) but only ask the gateway for
GET /hello, which a conversation replica answers with a constant and no data store. The
capacity runner puts it through the same steps as the listeners, so that the report can say
what fraction of what nginx + uvicorn + FastAPI + our middleware can serve the API reaches.
"""

from __future__ import annotations

from locust import FastHttpUser, events, task

from loadtests.samples import record_requests_when_asked
from loadtests.think import ThinkTime, schedule_from_environment

record_requests_when_asked(events)


class HelloUser(FastHttpUser):
    wait_time = ThinkTime(schedule_from_environment())
    network_timeout = 15.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        self.wait()

    @task
    def hello(self) -> None:
        with self.client.get("/hello", name="/hello", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
            elif response.text != '{"hello":"world"}':
                response.failure(f"unexpected body {(response.text or '')[:200]!r}")
            else:
                response.success()
