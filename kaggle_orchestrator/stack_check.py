"""``python -m kaggle_orchestrator.stack_check <stack>``: can this stack's Kaggle kernels work?

A ``kaggle`` step operator in server mode runs ZenML's step entrypoint in a Kaggle kernel, which
must reach the ZenML server and the artifact store: a local artifact store or a local ZenML store
(SQLite, ``zenml login --local``) cannot work. ZenML only warns about that when a stack is
registered and fails late, at the first run; ``stacks/register.sh`` runs this check right after
importing a stack, and the step operator's stack validator (``ServerSubmission.validator``)
applies the same rule before every run. Only configurations are read: no component's
implementation (Kubernetes, S3...) is imported, so any stack can be checked from any machine.
Exit status 1 with a message that says what to do instead; 0 otherwise.
"""

from __future__ import annotations

import sys


def server_mode_problem(operator: str, stack: str, store: str, store_is_local: bool,
                        store_path: str, zen_store_is_local: bool, zen_store_url: str) -> str:
    """Why a server-mode ``kaggle`` step operator cannot work on this stack ('' if it can)."""
    if store_is_local:
        return (
            f"the kaggle step operator '{operator}' is in server mode: its kernel runs ZenML's "
            f"step entrypoint on Kaggle, which cannot reach the local artifact store '{store}' "
            f"({store_path}). Put an S3-compatible store in the stack (stacks/team.yaml; "
            f"`zenml artifact-store register <name> --flavor=s3 --path=s3://<bucket>`, then "
            f"`zenml stack update {stack} -a <name>`), or train without a server: "
            f"`zenml step-operator update {operator} --mode=standalone`."
        )
    if zen_store_is_local:
        return (
            f"the kaggle step operator '{operator}' is in server mode: its kernel talks to the "
            f"ZenML server, but this client uses a local ZenML store ({zen_store_url}) that "
            f"Kaggle cannot reach. Connect to a ZenML server first (`zenml login <url>`, or "
            f"ZENML_STORE_URL and ZENML_STORE_API_KEY of a service account), or train without "
            f"a server: `zenml step-operator update {operator} --mode=standalone`."
        )
    return ""


def check_registered_stack(name: str) -> list[str]:
    """The problems of the registered stack ``name`` (from its components' configurations)."""
    from zenml.client import Client
    from zenml.enums import StackComponentType
    from zenml.stack.utils import validate_stack_component_config

    from kaggle_orchestrator.flavors.kaggle_step_operator_flavor import KAGGLE_FLAVOR, SERVER

    client = Client()
    stack = client.get_stack(name)
    operators = [
        component.name
        for component in stack.components.get(StackComponentType.STEP_OPERATOR, [])
        if component.flavor_name == KAGGLE_FLAVOR and component.configuration.get("mode") == SERVER
    ]
    if not operators:
        return []
    (store,) = stack.components[StackComponentType.ARTIFACT_STORE]
    config = validate_stack_component_config(
        configuration_dict=store.configuration, flavor=store.flavor,
        component_type=StackComponentType.ARTIFACT_STORE, validate_custom_flavors=True,
    )
    zen_store = client.zen_store
    problems = [
        server_mode_problem(operator, stack.name, store.name, config.is_local,
                            str(getattr(config, "path", "")), zen_store.is_local_store(),
                            zen_store.url)
        for operator in operators
    ]
    return [problem for problem in problems if problem]


def main(argv: list[str] | None = None) -> int:
    """Check one registered stack; 1 (and the reasons on stderr) if it cannot work."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kaggle_orchestrator.stack_check <stack name>", file=sys.stderr)
        return 2
    problems = check_registered_stack(args[0])
    for problem in problems:
        print(f"stack '{args[0]}': {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
