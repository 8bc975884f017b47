from v5_shared.service import run_service

from .app import create_app
from .settings import get_learning_settings

if __name__ == "__main__":
    run_service(create_app(), get_learning_settings())
