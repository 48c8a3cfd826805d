"""The sample payloads of Oracle Fusion documented in ``shared/reference/external-apis.md``."""

from __future__ import annotations

from typing import Any

# reference §2.2, version 3+ (Oracle's own example, trimmed as documented)
V4_WORKER: dict[str, Any] = {
    "items": [
        {
            "PersonId": 300100180313789,
            "PersonNumber": "955160008191551",
            "DateOfBirth": "1980-01-01",
            "CorrespondenceLanguage": None,
            "CreatedBy": "hcm.user@oracle.com",
            "CreationDate": "2019-05-23T05:40:05+00:00",
            "LastUpdateDate": "2019-05-23T05:41:47.166+00:00",
            "emails": {
                "items": [],
                "count": 0,
                "hasMore": False,
                "limit": 25,
                "offset": 0,
                "links": [],
            },
            "workRelationships": {
                "items": [
                    {
                        "PeriodOfServiceId": 300100180313798,
                        "LegislationCode": "BT",
                        "LegalEntityId": 300100074901955,
                        "LegalEmployerName": "Bhutan_LE_PSU",
                        "...": "...",
                    }
                ]
            },
        }
    ]
}

# reference §2.2, version 1 (a real-tenant sample), trimmed as documented
V1_WORKER: dict[str, Any] = {
    "items": [
        {
            "PersonNumber": "955160008178430",
            "workRelationships": [
                {
                    "PeriodOfServiceId": 300100037952124,
                    "LegalEmployerName": "Vision Europe",
                    "WorkerType": "E",
                    "PrimaryFlag": True,
                    "StartDate": "2009-01-01",
                    "TerminationDate": None,
                    "assignments": [
                        {
                            "AssignmentId": 300100037952130,
                            "AssignmentNumber": "E955160008178430",
                            "AssignmentName": "Test Engineer",
                            "AssignmentStatusType": "ACTIVE",
                            "AssignmentStatusTypeCode": "ACTIVE_NO_PROCESS",
                            "PrimaryAssignmentFlag": True,
                            "BusinessUnitId": 300100037681347,
                            "BusinessUnitName": "Vision Europe Projects",
                            "DepartmentId": 300100037658037,
                            "DepartmentName": "Europe-West",
                            "JobId": 300100037657906,
                            "JobCode": "ENG1003",
                            "LocationId": None,
                            "LocationCode": None,
                            "PositionId": None,
                            "ManagerFlag": False,
                            "EffectiveStartDate": "2009-01-01",
                            "EffectiveEndDate": "4712-12-31",
                            "EffectiveSequence": 1,
                            "EffectiveLatestChange": "Y",
                            "links": [
                                {
                                    "rel": "self",
                                    "kind": "item",
                                    "name": "assignments",
                                    "href": (
                                        ".../workers/00020000000EACED0005...78/child/"
                                        "workRelationships/300100037952124/child/assignments/"
                                        "00020000000EACED...78"
                                    ),
                                    "properties": {"changeIndicator": "ACED0005..."},
                                },
                                {
                                    "rel": "child",
                                    "kind": "collection",
                                    "name": "managers",
                                    "href": ".../assignments/<hash>/child/managers",
                                },
                                {
                                    "rel": "action",
                                    "kind": "other",
                                    "name": "endAssignment",
                                    "href": ".../action/endAssignment",
                                },
                            ],
                        }
                    ],
                }
            ],
            "emails": [
                {
                    "EmailAddressId": 300100037952122,
                    "EmailType": "W1",
                    "EmailAddress": "x@oracle.com",
                    "PrimaryFlag": True,
                    "FromDate": "2009-01-01",
                    "ToDate": "4712-12-31",
                }
            ],
            "names": [
                {
                    "FirstName": "Donna",
                    "LastName": "Parker",
                    "ListName": "Parker, Donna",
                    "LocalDisplayName": "Donna Parker",
                    "MiddleNames": None,
                    "Suffix": None,
                }
            ],
        }
    ]
}

# reference §2.3
MANAGER_ROW = {
    "AssignmentSupervisorId": 300100123,
    "ManagerAssignmentId": 300100037952200,
    "ManagerAssignmentNumber": "E18344",
    "ManagerType": "LINE_MANAGER",
    "ManagerTypeMeaning": "Line Manager",
    "ActionCode": "MANAGER_CHANGE",
    "ReasonCode": None,
    "EffectiveStartDate": "2021-05-01",
    "EffectiveEndDate": "4712-12-31",
}

# reference §3.1
TASK_LIST: dict[str, Any] = {
    "totalResult": True,
    "count": 1,
    "hasMore": False,
    "items": [
        {
            "number": 215362,
            "taskId": "1f6c1c5d-8186-4160-8c61-5f8cd15ec4db",
            "title": "Approval of ZOTL Vacation Absence Request for Todd Connors ...",
            "state": "ASSIGNED",
            "outcome": None,
            "priority": 3,
            "assignees": {"items": [{"id": "app.tester", "type": "user"}]},
            "createdBy": "Shekar Sesham",
            "createdDate": "2024-11-14 12:10:28",
            "assignedDate": "2024-11-14 12:10:27",
            "updatedDate": "2024-11-14 12:10:28",
            "fromUserName": "shekar.sesham",
            "fromUserDisplayName": "Shekar Sesham",
            "ownerUser": "...",
            "identificationKey": "300100155148633",
            "taskDefinitionName": "DocumentApproval",
            "category": "Purchasing",
            "applicationContext": "fscm",
            "approvalDuration": 0,
            "href": ".../bpm/api/4.0/tasks/215362",
        }
    ],
    "links": [
        {
            "rel": "self",
            "href": ".../tasks?status=ASSIGNED&assignment=MY_AND_GROUP&limit=25&offset=0",
        }
    ],
}

# reference §3.2
ACTION_LIST = [
    {"actionId": "DELEGATE", "actionType": "System", "title": "DELEGATE", "length": 0},
    {"actionId": "REASSIGN", "actionType": "System", "title": "REASSIGN", "length": 0},
    {"actionId": "APPROVE", "actionType": "Custom", "title": "Approve", "length": 0},
    {"actionId": "REJECT", "actionType": "Custom", "title": "Reject", "length": 0},
]

# reference §4
ERROR_DETAILS = {
    "title": "Bad Request",
    "status": "400",
    "o:errorDetails": [{"detail": "JBO-27024: ...", "o:errorCode": "27024", "o:errorPath": "..."}],
}
