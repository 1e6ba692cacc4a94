#!/usr/bin/env python3
"""Calls a running medbill with nothing but grpcio and server reflection: no .proto files.

    pip install grpcio grpcio-reflection protobuf
    python3 docs/examples/reflection_client.py [ADDRESS] [TOKEN]

It lists the services, checks health, opens a patient account and lists accounts. ADDRESS
defaults to 127.0.0.1:50051; TOKEN is omitted in dev mode (tenant "default").
"""

import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
token = sys.argv[2] if len(sys.argv) > 2 else None
metadata = [("authorization", f"Bearer {token}")] if token else []

channel = grpc.insecure_channel(address)
database = ProtoReflectionDescriptorDatabase(channel)
pool = descriptor_pool.DescriptorPool(database)
print("services:", ", ".join(database.get_services()))


def call(method_path, request_json):
    """Calls /package.Service/Method with a JSON body, using descriptors from reflection."""
    service_name, method_name = method_path.rsplit("/", 1)
    method = pool.FindServiceByName(service_name).FindMethodByName(method_name)
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    stub = channel.unary_unary(
        f"/{service_name}/{method_name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    request = json_format.ParseDict(request_json, request_class())
    return json_format.MessageToDict(stub(request, metadata=metadata))


print(call("grpc.health.v1.Health/Check", {"service": "medbill.collections.v1.CollectionsService"}))
print(
    call(
        "medbill.collections.v1.CollectionsService/OpenAccount",
        {"idempotency_key": "python-example-1", "patient_ref": "ehr-patient-42"},
    )
)
print(call("medbill.collections.v1.CollectionsService/ListAccounts", {"page_size": 10}))
