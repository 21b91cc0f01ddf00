"""Contains all the data models used in inputs/outputs"""

from .error_message import ErrorMessage
from .health_live_response_health_live import HealthLiveResponseHealthLive
from .http_validation_error import HTTPValidationError
from .item_create import ItemCreate
from .item_out import ItemOut
from .item_update import ItemUpdate
from .login_form import LoginForm
from .token import Token
from .user_create import UserCreate
from .user_out import UserOut
from .user_update import UserUpdate
from .validation_error import ValidationError
from .validation_error_context import ValidationErrorContext

__all__ = (
    "ErrorMessage",
    "HealthLiveResponseHealthLive",
    "HTTPValidationError",
    "ItemCreate",
    "ItemOut",
    "ItemUpdate",
    "LoginForm",
    "Token",
    "UserCreate",
    "UserOut",
    "UserUpdate",
    "ValidationError",
    "ValidationErrorContext",
)
