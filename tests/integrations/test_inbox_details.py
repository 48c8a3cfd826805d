"""Every detail the task inboxes show is served by the sandbox and read by the existing clients.

procurement: requisition number, description, preparer, amount and currency (the requisition
behind a Purchasing task, by its ``identificationKey``); hr: subject, requester and transaction
type (the BPM task itself); leasing: property, unit, applicant, rent and lease dates (Yardi).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from app.integrations.oracle_fusion import OracleFusionClient
from app.integrations.yardi import YardiClient
from app.sandbox.data import HR_TASKS, PROPERTIES, TENANTS
from tests.integrations.conftest import RunningSandbox

Oracle = Callable[..., OracleFusionClient]
Yardi = Callable[..., YardiClient]
EMMA = "EMMA.EMPLOYEE"


async def test_procurement_details_come_from_the_requisition_behind_the_task(
    oracle: Oracle, sandbox: RunningSandbox
) -> None:
    client = oracle(EMMA)
    tasks = await client.list_tasks(category="Purchasing")
    assert len(tasks) == 2
    for task in tasks:
        seed = sandbox.state.data.task(task.number, 0)
        assert seed is not None
        preparer = sandbox.state.data.person(seed.requester)
        detail = await client.get_task(task.number)
        assert detail.identification_key is not None
        requisition = await client.get_requisition(int(detail.identification_key))
        assert requisition.number is not None
        assert requisition.number in (detail.title or "")  # the task names its requisition
        assert requisition.description == f"Purchase request from {preparer.display_name}"
        assert requisition.preparer == preparer.display_name
        assert requisition.preparer_email == preparer.email
        lines = sandbox.state.data.requisition_lines(seed)
        assert requisition.amount == sum(price * quantity for _, _, price, quantity in lines)
        assert requisition.amount is not None
        assert requisition.amount > Decimal(0)
        assert requisition.currency == "USD"  # Emma's (person 1) requisitions are in USD


async def test_hr_details_are_the_task_subject_requester_and_transaction_type(
    oracle: Oracle, sandbox: RunningSandbox
) -> None:
    client = oracle(EMMA)
    tasks = await client.list_tasks(application_context="hcm")
    assert len(tasks) == 2
    kinds = {category: (definition, title) for category, definition, title in HR_TASKS}
    for task in tasks:
        detail = await client.get_task(task.number)
        seed = sandbox.state.data.task(task.number, 0)
        assert seed is not None
        requester = sandbox.state.data.person(seed.requester)
        assert detail.category in kinds  # the transaction type: Absences, Promotion...
        definition, title = kinds[detail.category]
        assert detail.task_definition_name == definition
        assert detail.title == title.format(who=requester.display_name)  # the subject
        assert detail.from_user_display_name == requester.display_name  # the requester
        assert detail.from_user == requester.username


async def test_leasing_details_are_property_unit_applicant_rent_and_lease_dates(
    yardi: Yardi,
) -> None:
    client = yardi()
    pending = await client.pending_approvals(approver=EMMA)
    details = [
        await client.approval_detail(
            approver=EMMA, workflow_name=a.workflow_name, record_id=a.record_id
        )
        for a in pending
    ]
    for approval, detail in zip(pending, details, strict=True):
        assert detail.property_code == "prop02"  # Emma is person 1
        assert detail.property_name == PROPERTIES[1]
        assert approval.property_name == PROPERTIES[1]
        assert detail.unit == str(100 + int(detail.record_id) % 50)
        assert detail.tenant in TENANTS  # the applicant
        assert detail.amount is not None
        assert detail.amount >= Decimal(1500)
        assert detail.currency == "USD"
        assert detail.lease_start is not None
        assert detail.lease_end is not None
        assert detail.lease_start.day == 1
        assert date(2027, 1, 1) <= detail.lease_start < detail.lease_end
    assert len({(d.lease_start, d.lease_end) for d in details}) == len(details)  # they differ
