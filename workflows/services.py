"""Operations that BPMN service tasks may call, registered by the feature packages.

A service task names its operator (spiffworkflow:serviceTaskOperator id="…"); the handler
receives the task data and the evaluated parameters and returns something JSON-able.
"""
REGISTRY = {}


def service(name):
    def register(fn):
        REGISTRY[name] = fn
        return fn
    return register
