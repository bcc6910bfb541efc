"""The model zoo: ``create(name, conv="standard"|"weighted"|"learned", density=..., **options)``.

Every architecture module registers its builders on import; add new ones to the import list.
"""

from wconv.models import (  # noqa: F401  (registers models)
    cgnet,
    dncnn,
    efficientnet,
    gac_snn,
    gmlp,
    multiwiener,
    nafnet,
    nin,
    resnet,
    small,
    unet,
    vgg,
)
from wconv.models.registry import create, list_models, model_task, register

__all__ = ["create", "list_models", "model_task", "register"]
