from v5_shared.service import run_service

from .app import create_app
from .settings import get_recommendation_settings

if __name__ == "__main__":
    run_service(create_app(), get_recommendation_settings())
