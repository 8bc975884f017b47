from v5_shared.service import run_service
from v5_shared.settings import get_settings

from .app import create_app

if __name__ == "__main__":
    run_service(create_app(), get_settings())
